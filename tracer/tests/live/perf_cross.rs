//! Every latency against `perf sched timehist` on the same run: perf records
//! the whole system while tracer traces one workload's process tree
//! (`tracer --json -- tracer scenario ...`); perf's rows are then restricted
//! to the workload's processes and turned into samples per (metric, class)
//! exactly as tracer classes them (`tracer::perf_sched`, which says what
//! each perf column is). Compared at p50 and p99 per metric and class:
//! - `runq_latency_ns` vs perf's sch delay (after a sleep), or its wait time
//!   (after a preemption, where perf 6.1 prints sch delay 0);
//! - `offcpu_ns` vs perf's wait time (switch-in minus last switch-out);
//! - `oncpu_ns` vs perf's run time.
//!
//! Margin: tracer within max(10 %, 1 µs) of perf's value + 0.5 µs. perf
//! truncates to whole µs (its real value is in [v, v + 1 µs)), so its
//! midpoint is v + 0.5 µs, and the 1 µs floor holds that ±0.5 µs plus
//! tracer's histogram resolution (1/64 of a power of two, < 1.6 %) for
//! values of a few µs; 10 % covers the few samples where the two sets
//! differ (tracer misses a thread's first switch-in after exec and has no
//! sample for it, perf has the whole system's view) and the difference at
//! p99 that a handful of samples in the tail makes. Both take their stamps at
//! the same tracepoints (sched_switch, sched_waking, sched_wakeup_new), so
//! with correct code the true difference is well under that. p50 is compared
//! from 100 samples on each side, p99 from 500 (5 samples above it).
//!
//! One stated exception: `oncpu_ns` in the idle class (slices that start at
//! an idle exit and end going idle, a few µs long) gets 4 µs more. Measured
//! here, tracer's are shorter than perf's by 0.5-1 µs at p50 and 2-3.6 µs at
//! p99 (e.g. 7.5 vs 9 µs, 13.2 vs 16 µs, 20.9 vs 24 µs in four runs), on
//! perf's local clock and on CLOCK_MONOTONIC (`-k mono`) alike, so not a
//! clock difference. It is the order of the two tools' probes on the
//! tracepoint: perf attaches first here, so at each sched_switch its handler
//! runs before tracer's program reads the clock, and right after an idle
//! exit (cold caches) that handler takes µs, which tracer's slice start then
//! skips. With tracer attached before perf (an experiment run once, with
//! `tracer -c NAME` started before `perf sched record`) the sign flips:
//! tracer 18.3 vs perf 17 µs and 17.5 vs 15 µs at p99. A run-queue error like
//! the one this test was written for (tens of µs at p50) is far outside it.
//!
//! perf records with `-k mono`: the clock tracer reads (`bpf_ktime_get_ns`).
//!
//! perf's view must be complete before anything is compared: on this VM
//! (kernel 6.18 under firecracker) perf and ftrace never see `sched_switch`
//! out of idle on CPU 1 (BPF programs do), so a task woken from idle there
//! gets garbage wait and sch delay. At the start, a short recording of a
//! task sleeping on each CPU finds the CPUs where perf sees idle exits; the
//! measured tasks are pinned there. And each run checks that every
//! switch-in of the workload's tasks has its switch before it on its CPU in
//! perf's rows, and that perf's and tracer's sample counts per class agree
//! (2 % + 20): when not, the test fails saying perf's view is incomplete.

use std::{collections::BTreeSet, sync::OnceLock};

use tracer::{
    metrics::Metric,
    perf_sched::{self, Recorder, Samples},
    scenario::percentile,
};

use super::*;

const CHECKED: [Metric; 3] = [Metric::Runq, Metric::Offcpu, Metric::Oncpu];
const P50_MIN: usize = 100;
const P99_MIN: usize = 500;

/// Installs perf (Debian's linux-perf) when it is missing.
fn ensure_perf() {
    let found = || {
        Command::new("perf")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if found() {
        return;
    }
    eprintln!("perf is missing: installing linux-perf");
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends", "linux-perf"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    assert!(
        found(),
        "perf is missing and apt-get install linux-perf did not install it"
    );
}

/// Whether perf sees `sched_switch` out of idle on `cpu`: a complete
/// trace has, after every switch into idle there, a switch out of idle
/// next. Needs at least 3 switches into idle (up to five tries, as other
/// load may keep the CPU from going idle).
fn perf_sees_idle_exits(cpu: usize) -> bool {
    for _ in 0..5 {
        let (entries, exits_seen) = idle_switches(cpu);
        if entries >= 3 {
            return exits_seen == entries;
        }
    }
    false
}

/// Switches into idle that perf saw on `cpu`, and how many of them the next
/// switch seen there took out of idle again, while a shell pinned there
/// slept 50 times for 3 ms under `perf record -e sched:sched_switch`.
fn idle_switches(cpu: usize) -> (usize, usize) {
    let path = std::env::temp_dir().join(format!("tracer-calibrate-{}-{cpu}.data", std::process::id()));
    let recorded = Command::new("perf")
        .args(["record", "-q", "-e", "sched:sched_switch", "-a", "-o"])
        .arg(&path)
        .args(["--", "taskset", "-c", &cpu.to_string(), "sh", "-c"])
        .arg("for i in $(seq 50); do sleep 0.003; done")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(recorded, "perf record -e sched:sched_switch failed");
    let script = Command::new("perf")
        .args(["script", "-F", "cpu,trace", "-i"])
        .arg(&path)
        .stderr(Stdio::null())
        .output();
    let _ = std::fs::remove_file(&path);
    let Ok(script) = script else { return (0, 0) };
    let text = String::from_utf8_lossy(&script.stdout);
    let on_cpu = format!("[{cpu:03}]");
    let (mut entries, mut exits_seen, mut in_idle) = (0, 0, false);
    for line in text.lines().filter(|l| l.trim_start().starts_with(&on_cpu)) {
        if in_idle && line.contains("prev_pid=0 ") {
            exits_seen += 1;
        }
        in_idle = line.contains("next_pid=0 ");
        entries += usize::from(in_idle);
    }
    // The last entry may have no switch after it yet.
    if in_idle {
        entries -= 1;
    }
    eprintln!(
        "calibration: CPU {cpu}: perf saw {entries} switches into idle, {exits_seen} of them followed by one out of it"
    );
    (entries, exits_seen)
}

/// The CPUs where perf sees idle exits (measured once per test process).
fn good_cpus() -> &'static [usize] {
    static GOOD: OnceLock<Vec<usize>> = OnceLock::new();
    GOOD.get_or_init(|| {
        ensure_perf();
        let online = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..online).rev().filter(|&c| perf_sees_idle_exits(c)).collect()
    })
}

/// (measured CPU, helper CPU). `None` when perf sees idle exits nowhere.
fn cpus() -> Option<(usize, usize)> {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = *good_cpus().first()?;
    Some((
        cpu,
        if cpu + 1 < online {
            cpu + 1
        } else {
            cpu.saturating_sub(1)
        },
    ))
}

/// One workload under tracer and perf together.
struct Run {
    name: String,
    report: Value,
    helper: Value,
    perf: Samples,
}

/// Records with perf while `tracer --json -- tracer ARGS` runs.
fn run_under_both(name: &str, args: &[String]) -> Run {
    let path = std::env::temp_dir().join(format!("tracer-perf-cross-{}.data", std::process::id()));
    let recorder = Recorder::start(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = tracer_cmd()
        .args(["--json", "--", env!("CARGO_BIN_EXE_tracer")])
        .args(args)
        .output()
        .unwrap();
    let record_stderr = recorder.stop().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (text, stderr) = perf_sched::timehist(&path).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("stderr"));
    let timehist = perf_sched::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let lost: u64 = timehist.lost
        + record_stderr
            .lines()
            .chain(stderr.lines())
            .filter_map(perf_sched::lost_count)
            .sum::<u64>();
    assert_eq!(
        lost, 0,
        "{name}: perf lost {lost} events: its view is incomplete, nothing to compare"
    );
    let (helpers, report) = split_output(&String::from_utf8(out.stdout).unwrap());
    let helper = helpers.into_iter().next().expect("the workload's JSON line");
    let tgids: BTreeSet<i64> = match helper.get("tgids") {
        Some(t) => t.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect(),
        // tracer ping-pong: its process, and with --kind processes the child (tids[1]).
        None => [&helper["tgid"], &helper["tids"][1]]
            .into_iter()
            .filter_map(Value::as_i64)
            .collect(),
    };
    let perf = perf_sched::samples(&timehist.rows, &tgids, &perf_sched::is_kthread);
    Run {
        name: name.into(),
        report,
        helper,
        perf,
    }
}

fn tracer_latency(run: &Run, metric: Metric, class: Class) -> &Value {
    &run.report["classes"][class.name()][metric.key()]
}

/// Perf's view is complete: every switch-in it has for the workload's tasks
/// follows a switch to them on that CPU, and its counts match tracer's.
fn assert_perf_complete(run: &Run) {
    let Samples { broken, rows, .. } = run.perf;
    eprintln!(
        "{}: perf: {rows} switch-outs of the workload's tasks, {broken} switch-ins without their switch",
        run.name
    );
    assert!(
        broken * 100 <= rows + 500,
        "{}: perf's view is incomplete: {broken} of {rows} switch-ins of the workload's tasks have no switch to \
         them before them on their CPU (perf misses switches there, e.g. out of idle on CPU 1 on this VM)",
        run.name
    );
    for metric in [Metric::Offcpu, Metric::Oncpu] {
        for class in Class::ALL {
            let t = tracer_latency(run, metric, class)["count"].as_u64().unwrap_or(0) as f64;
            let p = run.perf.get(metric, class).len() as f64;
            assert!(
                (t - p).abs() <= 0.02 * t.max(p) + 20.0,
                "{}: perf's view is incomplete or not the same tasks': {} {} samples: tracer {t}, perf {p}",
                run.name,
                metric.key(),
                class.name()
            );
        }
    }
}

/// Prints the table and returns the failures.
fn compare(run: &Run) -> Vec<String> {
    let mut failures = Vec::new();
    eprintln!("{}: the workload's own clock: {}", run.name, run.helper);
    eprintln!(
        "{:<18} {:<8} {:>7} {:>10} {:>10}   {:>7} {:>10} {:>10}",
        "metric", "class", "tracer", "p50", "p99", "perf", "p50", "p99"
    );
    for metric in CHECKED {
        for class in Class::ALL {
            let t = tracer_latency(run, metric, class);
            let t_count = t["count"].as_u64().unwrap_or(0) as usize;
            let mut p = run.perf.get(metric, class).to_vec();
            p.sort_unstable();
            if t_count == 0 && p.is_empty() {
                continue;
            }
            let us = |v: Option<u64>| v.map_or("-".to_string(), |ns| format!("{:.1}us", ns as f64 / 1e3));
            let (p50, p99) = (percentile(&p, 0.50), percentile(&p, 0.99));
            let mut verdict = Vec::new();
            for (q, at, min) in [("p50", p50, P50_MIN), ("p99", p99, P99_MIN)] {
                if t_count < min || p.len() < min {
                    continue;
                }
                let ours = t[q].as_u64().unwrap() as f64;
                let theirs = at as f64 + 500.0;
                let idle_exit = if metric == Metric::Oncpu && class == Class::Idle {
                    4000.0
                } else {
                    0.0
                };
                let allowed = (0.10 * theirs).max(1000.0) + idle_exit;
                let ok = (ours - theirs).abs() <= allowed;
                verdict.push(format!("{q} {}", if ok { "ok" } else { "FAIL" }));
                if !ok {
                    failures.push(format!(
                        "{}: {} {} {q}: tracer {ours} ns, perf {theirs} ns (midpoint), allowed ±{allowed} ns",
                        run.name,
                        metric.key(),
                        class.name()
                    ));
                }
            }
            eprintln!(
                "{:<18} {:<8} {:>7} {:>10} {:>10}   {:>7} {:>10} {:>10}   {}",
                metric.key(),
                class.name(),
                t_count,
                us(t["p50"].as_u64()),
                us(t["p99"].as_u64()),
                p.len(),
                us((!p.is_empty()).then_some(p50)),
                us((!p.is_empty()).then_some(p99)),
                verdict.join(", ")
            );
        }
    }
    failures
}

/// Runs one scenario and checks it: perf's view complete, `expected`
/// classes filled on both sides for every checked metric, and the
/// percentiles within the margin.
fn check(name: &str, args: &[String], expected: &[Class]) {
    let run = run_under_both(name, args);
    assert_perf_complete(&run);
    let failures = compare(&run);
    for metric in CHECKED {
        for &class in expected {
            let t = tracer_latency(&run, metric, class)["count"].as_u64().unwrap_or(0) as usize;
            let p = run.perf.get(metric, class).len();
            assert!(
                t >= P50_MIN && p >= P50_MIN,
                "{name}: {} {}: {t} samples from tracer, {p} from perf; expected at least {P50_MIN}: not checked \
                 (other load on the workload's CPU? load average {})",
                metric.key(),
                class.name(),
                std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn scenario_args(name: &str, cpu: usize, other: usize) -> Vec<String> {
    let mut args: Vec<String> = [
        "scenario",
        name,
        "--cpu",
        &cpu.to_string(),
        "--other",
        &other.to_string(),
    ]
    .map(String::from)
    .into();
    args.extend(["--seconds", "2", "--count", "300"].map(String::from));
    args
}

/// (measured CPU, helper CPU) for scenarios that never leave the measured
/// CPU idle; they stay checkable where perf misses every idle exit.
fn busy_cpus() -> (usize, usize) {
    cpus().unwrap_or_else(|| (workload_cpu(), 0))
}

#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn perf_agrees_on_a_wakeup_onto_an_idle_cpu() {
    let Some((cpu, other)) = cpus() else {
        panic!(
            "CANNOT BE CHECKED HERE: perf sees no switch out of idle on any CPU of this machine, so its sch delay \
             and wait time for a wakeup onto an idle CPU are garbage"
        );
    };
    check("wake-idle", &scenario_args("wake-idle", cpu, other), &[Class::Idle]);
}

#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn perf_agrees_on_a_wakeup_that_preempts_another_process() {
    let (cpu, other) = busy_cpus();
    check(
        "wake-preempt",
        &scenario_args("wake-preempt", cpu, other),
        &[Class::Process],
    );
}

#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn perf_agrees_on_tick_preemption_among_spinners() {
    let (cpu, other) = busy_cpus();
    check("spinners", &scenario_args("spinners", cpu, other), &[Class::Process]);
}

#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn perf_agrees_on_new_forked_and_execd_tasks() {
    let (cpu, other) = busy_cpus();
    check("fork-exec", &scenario_args("fork-exec", cpu, other), &[Class::Process]);
}

fn ping_pong_args(kind: &str, cpu: usize) -> Vec<String> {
    [
        "ping-pong",
        "--kind",
        kind,
        "--round-trips",
        "30000",
        "--cpu",
        &cpu.to_string(),
    ]
    .map(String::from)
    .into()
}

#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn perf_agrees_on_a_pinned_thread_ping_pong() {
    check(
        "thread ping-pong",
        &ping_pong_args("threads", busy_cpus().0),
        &[Class::Thread],
    );
}

#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn perf_agrees_on_a_pinned_process_ping_pong() {
    check(
        "process ping-pong",
        &ping_pong_args("processes", busy_cpus().0),
        &[Class::Process],
    );
}
