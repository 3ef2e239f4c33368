//! What each subcommand does with its flags: the options they make, the
//! run, and what it prints. `main` parses the command line, calls one of
//! these, and turns the result into the exit code.

use super::{
    BenchArgs, CheckArgs, CheckProbeArg, ChurnArgs, Cli, FloorArgs, KindArg, PingPongArgs, ScenarioArg, ScenarioArgs,
    SoakLoadArgs, TouchArg, ViaArg,
};
use crate::{
    bench, check, export,
    probe::{ProbeKind, attach_floor},
    session,
    workload::scenario::{self, Scenario},
    workload::{self, PingPong, Spec, Via},
};

/// The tracing session (no subcommand); returns its exit code: 0, or with
/// `-- COMMAND` the command's.
pub fn trace(cli: &Cli) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let options = cli.session_options()?;
    Ok(runtime.block_on(session::trace(options))?)
}

/// `tracer check`: runs it (progress on a terminal), prints the table or
/// JSON; returns whether it passed.
pub fn check(args: &CheckArgs) -> anyhow::Result<bool> {
    let options = check::Options {
        round_trips: args.round_trips,
        cpu: workload_cpu(args.cpu)?,
        probes: match args.probe {
            CheckProbeArg::All => vec![ProbeKind::TpBtf, ProbeKind::Tracepoint],
            CheckProbeArg::TpBtf => vec![ProbeKind::TpBtf],
            CheckProbeArg::Tracepoint => vec![ProbeKind::Tracepoint],
        },
        offcpu_slots: args.offcpu_slots,
    };
    let result = with_progress("tracer check", args.json, |progress| check::run(&options, progress))?;
    let text = if args.json {
        serde_json::to_string(&result)? + "\n"
    } else {
        check::table(&result)
    };
    print_quietly(&text)?;
    Ok(result.pass)
}

/// `tracer bench`: runs it (progress on a terminal), writes the plot if
/// asked, prints the table or JSON.
pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    if args.sweep {
        return sweep(args);
    }
    let plot_file = args.plot.as_deref().map(export::create_output).transpose()?;
    let cpu = workload_cpu(args.cpu)?;
    let options = bench::Options {
        runs: args.runs,
        round_trips: args.round_trips.unwrap_or(100_000),
        working_set: args.working_set,
        via: match args.via {
            ViaArg::Pipe => Via::Pipe,
            ViaArg::Futex => Via::Futex,
        },
        cpu,
    };
    let result = with_progress("tracer bench", args.json, |progress| bench::run(options, progress))?;
    if let Some(file) = plot_file {
        export::plot::write(file, &[export::plot::bench_chart(&result)])?;
    }
    let text = if args.json {
        bench::render::json(&result) + "\n"
    } else {
        bench::render::table(&result)
    };
    print_quietly(&text)
}

/// `tracer bench --sweep`: the lat_ctx matrix.
fn sweep(args: &BenchArgs) -> anyhow::Result<()> {
    let plot_file = args.plot.as_deref().map(export::create_output).transpose()?;
    let options = bench::sweep::SweepOptions {
        rings: args.rings.clone(),
        working_sets: args.working_sets.clone(),
        stride: match args.touch {
            TouchArg::Line => 64,
            TouchArg::Page => 4096,
        },
        runs: args.runs,
        laps: args.round_trips,
        cpu: workload_cpu(args.cpu)?,
    };
    let result = with_progress("tracer bench --sweep", args.json, |progress| {
        bench::sweep::run(options, progress)
    })?;
    if let Some(file) = plot_file {
        export::sweep_plot::write(file, &result)?;
    }
    let text = if args.json {
        bench::sweep_render::json(&result) + "\n"
    } else {
        bench::sweep_render::table(&result)
    };
    print_quietly(&text)
}

/// Runs one pinned ping-pong and prints the kernel's accounting as JSON:
/// the workload's switches, and all switches of this process so far.
pub fn ping_pong(args: &PingPongArgs) -> anyhow::Result<()> {
    let kind = match args.kind {
        KindArg::Threads => PingPong::Threads,
        KindArg::Processes => PingPong::Processes,
    };
    if args.wait_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
    }
    let outcome = workload::run(&Spec::new(kind, args.cpu, args.round_trips))?;
    let line = serde_json::json!({
        "tgid": std::process::id(),
        "elapsed_ns": outcome.elapsed.as_nanos() as u64,
        "switches": outcome.switches(),
        "process_switches": workload::process_switches(),
        "tids": outcome.tids,
    });
    print_quietly(&format!("{line}\n"))
}

/// Task churn; prints one JSON line with what the kernel counted.
pub fn churn(args: &ChurnArgs) -> anyhow::Result<()> {
    let c = workload::churn(args.threads, args.processes)?;
    let line = serde_json::json!({
        "tgid": std::process::id(),
        "self_switches": c.self_switches,
        "children_switches": c.children_switches,
        "threads": c.threads,
        "children": c.children,
    });
    print_quietly(&format!("{line}\n"))
}

/// One scenario for the cross-check against perf sched timehist; prints
/// its JSON line.
pub fn scenario(args: &ScenarioArgs) -> anyhow::Result<()> {
    let scenario = match args.name {
        ScenarioArg::WakeIdle => Scenario::WakeIdle,
        ScenarioArg::WakePreempt => Scenario::WakePreempt,
        ScenarioArg::Spinners => Scenario::Spinners,
        ScenarioArg::ForkExec => Scenario::ForkExec,
    };
    let line = scenario::run(scenario, args.cpu, args.other, args.seconds, args.count)?;
    print_quietly(&format!("{line}\n"))
}

/// Load for soak tests: pinned ping-pongs and task churn in turn until
/// the time is up; prints one JSON line with the kernel's counts.
pub fn soak_load(args: &SoakLoadArgs) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.seconds);
    let (mut thread_switches, mut process_switches, mut rounds) = (0u64, 0u64, 0u64);
    while std::time::Instant::now() < deadline {
        thread_switches += workload::run(&Spec::new(PingPong::Threads, args.cpu, 20_000))?.switches();
        process_switches += workload::run(&Spec::new(PingPong::Processes, args.cpu, 20_000))?.switches();
        workload::churn(20, 20)?;
        rounds += 1;
    }
    let line = serde_json::json!({
        "rounds": rounds,
        "thread_switches": thread_switches,
        "process_switches": process_switches,
    });
    print_quietly(&format!("{line}\n"))
}

/// The floor for overhead benchmarks: empty programs attached until
/// SIGINT or SIGTERM.
pub fn floor(args: &FloorArgs) -> anyhow::Result<()> {
    let _floor = attach_floor(args.with_exit)?;
    // SAFETY: an empty, then filled, signal set; sigwait blocks this
    // (only) thread until SIGINT or SIGTERM arrives.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
    }
    Ok(())
}

/// For overhead benchmarks: BPF run-time statistics on until stdin closes;
/// one program listing per line read.
pub fn bpf_stats() -> anyhow::Result<()> {
    let _on = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .map_err(|e| anyhow::anyhow!("cannot turn on BPF run-time statistics: {e}"))?;
    for line in std::io::stdin().lines() {
        line?;
        print_quietly(&format!("{}\n", crate::kernel::bpf_listing::programs()))?;
    }
    Ok(())
}

/// Runs `f` with a progress callback that redraws one line on stderr
/// (`NAME: step`), erased when `f` returns; silent with `--json` or when
/// stderr is not a terminal, where it could not be erased.
fn with_progress<T>(name: &str, json: bool, f: impl FnOnce(&mut dyn FnMut(&str)) -> T) -> T {
    let quiet = json || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let result = f(&mut |step| {
        if !quiet {
            eprint!("\r\x1b[K{name}: {step}");
        }
    });
    if !quiet {
        eprint!("\r\x1b[K");
    }
    result
}

/// `--cpu`, or the last online CPU (away from CPU 0's housekeeping).
fn workload_cpu(asked: Option<usize>) -> anyhow::Result<usize> {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = asked.unwrap_or(online - 1);
    if cpu >= online {
        anyhow::bail!("--cpu {cpu}: this machine has CPUs 0-{}", online - 1);
    }
    Ok(cpu)
}

/// Writes to stdout; a closed pipe is not an error.
fn print_quietly(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
