//! Every latency against `perf sched timehist` on the same run: perf records
//! the whole system while tracer traces one workload's process tree
//! (`tracer --json -- tracer scenario ...`); perf's rows are then restricted
//! to the workload's processes and turned into samples per (metric, class)
//! exactly as tracer classes them (`tracer::workload::perf_sched`, which says what
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
//! perf's value is taken over a window of ranks around the percentile's:
//! ± (the difference in sample counts + 0.2 % + 2), as many samples as one
//! side may have and the other not. Where the distribution has a gap at the
//! percentile, one rank moves the value a lot: in the wakeup-preempts
//! scenario half the on-CPU slices are the reader's (µs) and half the
//! spinner's (~480 µs), and p50 read 130.6 µs (tracer, 7,986 samples) vs
//! 146 µs (perf, 7,988): not a disagreement about any slice.
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

use std::collections::BTreeSet;

use tracer::{
    snapshot::metrics::Metric,
    workload::perf_sched::{self, Recorder, Samples},
    workload::scenario::percentile,
};

use super::{perf_calibrate::cpus, *};

const CHECKED: [Metric; 3] = [Metric::Runq, Metric::Offcpu, Metric::Oncpu];
const P50_MIN: usize = 100;
const P99_MIN: usize = 500;

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
            for (q, quantile, min) in [("p50", 0.50, P50_MIN), ("p99", 0.99, P99_MIN)] {
                if t_count < min || p.len() < min {
                    continue;
                }
                let ours = t[q].as_u64().unwrap() as f64;
                let idle_exit = if metric == Metric::Oncpu && class == Class::Idle {
                    4000.0
                } else {
                    0.0
                };
                let allowed = |perf: f64| (0.10 * perf).max(1000.0) + idle_exit;
                // The rank may move by as many samples as one side has and
                // the other not.
                let slack = t_count.abs_diff(p.len()) + p.len() / 500 + 2;
                let rank = ((quantile * p.len() as f64).ceil() as usize).clamp(1, p.len()) - 1;
                let lo = p[rank.saturating_sub(slack)] as f64 + 500.0;
                let hi = p[(rank + slack).min(p.len() - 1)] as f64 + 500.0;
                let ok = ours >= lo - allowed(lo) && ours <= hi + allowed(hi);
                verdict.push(format!("{q} {}", if ok { "ok" } else { "FAIL" }));
                if !ok {
                    failures.push(format!(
                        "{}: {} {} {q}: tracer {ours} ns, perf {lo}-{hi} ns (midpoints, ranks ±{slack}), allowed \
                         -{}/+{} ns",
                        run.name,
                        metric.key(),
                        class.name(),
                        allowed(lo),
                        allowed(hi)
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
fn perf_agrees_on_a_wakeup_that_preempts_another_process() {
    let (cpu, other) = busy_cpus();
    check(
        "wake-preempt",
        &scenario_args("wake-preempt", cpu, other),
        &[Class::Process],
    );
}

#[test]
fn perf_agrees_on_tick_preemption_among_spinners() {
    let (cpu, other) = busy_cpus();
    check("spinners", &scenario_args("spinners", cpu, other), &[Class::Process]);
}

#[test]
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
fn perf_agrees_on_a_pinned_thread_ping_pong() {
    check(
        "thread ping-pong",
        &ping_pong_args("threads", busy_cpus().0),
        &[Class::Thread],
    );
}

#[test]
fn perf_agrees_on_a_pinned_process_ping_pong() {
    check(
        "process ping-pong",
        &ping_pong_args("processes", busy_cpus().0),
        &[Class::Process],
    );
}
