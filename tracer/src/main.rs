//! `tracer`: thin entry point; see the library for everything it does.
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};
use tracer::{
    bench, check,
    cli::{BenchArgs, CheckArgs, CheckProbeArg, Cli, Command, KindArg, PingPongArgs, ScenarioArg, ViaArg},
    export,
    probe::ProbeKind,
    workload::scenario::{self, Scenario},
    workload::{self, PingPong, Spec, Via},
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = cli.check() {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    init_logging(cli.verbose);
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Each error type here puts its cause in its own message; printing
            // the source chain as well would repeat it.
            eprintln!("tracer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Returns the exit code: 0, or with `-- COMMAND` the command's.
fn run(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Some(Command::Bench(args)) => {
            run_bench(args)?;
            return Ok(0);
        }
        Some(Command::Check(args)) => {
            return run_check(args);
        }
        Some(Command::PingPong(args)) => {
            ping_pong(args)?;
            return Ok(0);
        }
        Some(Command::Floor(args)) => {
            let _floor = tracer::probe::attach_floor(args.with_exit)?;
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
            return Ok(0);
        }
        Some(Command::SoakLoad(args)) => {
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
            print_quietly(&format!("{line}\n"))?;
            return Ok(0);
        }
        Some(Command::Scenario(args)) => {
            let scenario = match args.name {
                ScenarioArg::WakeIdle => Scenario::WakeIdle,
                ScenarioArg::WakePreempt => Scenario::WakePreempt,
                ScenarioArg::Spinners => Scenario::Spinners,
                ScenarioArg::ForkExec => Scenario::ForkExec,
            };
            let line = scenario::run(scenario, args.cpu, args.other, args.seconds, args.count)?;
            print_quietly(&format!("{line}\n"))?;
            return Ok(0);
        }
        Some(Command::Churn(args)) => {
            let c = workload::churn(args.threads, args.processes)?;
            let line = serde_json::json!({
                "tgid": std::process::id(),
                "self_switches": c.self_switches,
                "children_switches": c.children_switches,
                "threads": c.threads,
                "children": c.children,
            });
            print_quietly(&format!("{line}\n"))?;
            return Ok(0);
        }
        None => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let options = cli.session_options()?;
    Ok(runtime.block_on(tracer::session::trace(options))?)
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

fn run_check(args: &CheckArgs) -> anyhow::Result<u8> {
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
    let quiet = args.json || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let result = check::run(&options, |step| {
        if !quiet {
            eprint!("\r\x1b[Ktracer check: {step}");
        }
    })?;
    if !quiet {
        eprint!("\r\x1b[K");
    }
    let text = if args.json {
        serde_json::to_string(&result)? + "\n"
    } else {
        check::table(&result)
    };
    print_quietly(&text)?;
    Ok(if result.pass { 0 } else { 1 })
}

fn run_bench(args: &BenchArgs) -> anyhow::Result<()> {
    let plot_file = args.plot.as_deref().map(export::create_output).transpose()?;
    let cpu = workload_cpu(args.cpu)?;
    let options = bench::Options {
        runs: args.runs,
        round_trips: args.round_trips,
        working_set: args.working_set,
        via: match args.via {
            ViaArg::Pipe => Via::Pipe,
            ViaArg::Futex => Via::Futex,
        },
        cpu,
    };
    // Progress only on a terminal, where it can be erased again.
    let quiet = args.json || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let result = bench::run(options, |step| {
        if !quiet {
            eprint!("\r\x1b[Ktracer bench: {step}");
        }
    })?;
    if !quiet {
        eprint!("\r\x1b[K");
    }
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

/// Runs one pinned ping-pong and prints the kernel's accounting as JSON:
/// the workload's switches, and all switches of this process so far.
fn ping_pong(args: &PingPongArgs) -> anyhow::Result<()> {
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

/// Writes to stdout; a closed pipe is not an error.
fn print_quietly(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Warnings and errors (kernel-side ones included) always; more with -v.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .format_target(false)
        .init();
}
