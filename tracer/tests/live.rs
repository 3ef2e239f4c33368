//! Live-kernel tests: load the real programs, run workloads with known ground
//! truth, and check what the tracer saw against the kernel's own accounting.
//! They need root and a BPF-capable kernel with BTF; `cargo xtask test` runs
//! them (through sudo when needed), one at a time.

use std::{
    collections::BTreeSet,
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tracer::{
    metrics::{Metric, MetricSet},
    probe::{ProbeKind, ProbeOptions, Probes},
    snapshot::Snapshot,
    workload::{self, Outcome, PingPong, Spec},
};
use tracer_common::Class;

const ROUND_TRIPS: u64 = 100_000;
const NEEDS_ROOT: &str = "needs root and a kernel with BPF and BTF: run `cargo xtask test`";

/// The CPU the workloads are pinned to: the last one, away from CPU 0's
/// housekeeping.
fn workload_cpu() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) - 1
}

fn attach() -> Probes {
    attach_with(ProbeKind::TpBtf)
}

fn attach_with(probe: ProbeKind) -> Probes {
    let probes = Probes::attach(ProbeOptions {
        metrics: MetricSet::ALL,
        probe,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("cannot attach: {e}"));
    for (metric, why) in &probes.unavailable {
        // Only switch cost can be missing (before Linux 6.16), and with the
        // tracepoint probe the run-queue and off-CPU times.
        eprintln!("skipping checks of {}: {why}", metric.key());
    }
    probes
}

/// Runs `kind` under the tracer; returns what the kernel counted and what the
/// tracer saw on the workload's CPU over the same span.
fn traced(kind: PingPong, probe: ProbeKind) -> (Outcome, Snapshot, Probes) {
    let probes = attach_with(probe);
    let cpus = [workload_cpu()];
    let before = probes.snapshot_cpus(Some(&cpus)).unwrap();
    let outcome = workload::run(&Spec::new(kind, workload_cpu(), ROUND_TRIPS)).unwrap();
    let after = probes.snapshot_cpus(Some(&cpus)).unwrap();
    (outcome, after.since(&before), probes)
}

/// Checks that the workload's switches land in `expected`, and agree with the
/// kernel's count, within stated margins:
/// * at least 99 % of the kernel's count of the workload's switches are in `expected`
///   (a few are preemptions by kernel threads or switches to idle);
/// * at most 1 % + 200 more: background switches of the same class on the
///   workload's CPU over ~1 s; a tracer that double counted would exceed it;
/// * the other user class sees < 1 % of the workload.
fn check_class(kind: PingPong, expected: Class, other: Class, probe: ProbeKind) {
    let (outcome, delta, probes) = traced(kind, probe);
    let cpu = workload_cpu();
    let truth = outcome.switches();
    let seen = delta.cpu_switches(cpu, expected);
    let wrong = delta.cpu_switches(cpu, other);
    eprintln!(
        "{kind:?}: kernel counted {truth} switches ({} voluntary, {} involuntary) in {:?}; tracer on CPU {cpu}: {expected:?} {seen}, {other:?} {wrong}",
        outcome.voluntary, outcome.involuntary, outcome.elapsed
    );
    assert!(
        truth >= 2 * ROUND_TRIPS - 10,
        "pinning did not hold: only {truth} switches for {ROUND_TRIPS} round trips"
    );
    assert!(
        seen as f64 >= 0.99 * truth as f64,
        "{expected:?}: saw {seen}, kernel counted {truth}"
    );
    assert!(
        seen as f64 <= 1.01 * truth as f64 + 200.0,
        "{expected:?}: saw {seen}, more than kernel's {truth}"
    );
    assert!(
        (wrong as f64) < 0.01 * truth as f64,
        "{other:?}: {wrong} of {truth} switches misclassified"
    );

    // The voluntary/preempted split follows the kernel's nvcsw/nivcsw.
    let counts = delta.per_cpu_counts[cpu].by_class[expected.index()];
    let (voluntary, preempted) = (counts[0], counts[1]);
    assert!(
        voluntary as f64 >= 0.99 * outcome.voluntary as f64
            && voluntary as f64 <= 1.01 * outcome.voluntary as f64 + 200.0,
        "voluntary: tracer {voluntary}, kernel {}",
        outcome.voluntary
    );
    assert!(
        preempted <= outcome.involuntary + 200,
        "preempted: tracer {preempted}, kernel {}",
        outcome.involuntary
    );

    // The latencies, on the workload's CPU, against the kernel's own numbers.
    let report = tracer::run::report(
        &probes,
        &Snapshot::empty(delta.per_cpu_counts.len(), probes.measured),
        &delta,
    );
    let class = report.class(expected);
    let sum = |m: Metric| delta.latency(m).map(|h| h[expected.index()].sum_ns);
    if let Some(cost) = class.latency(Metric::SwitchCost) {
        // Every switch of the class got a switch-cost sample.
        let stats = cost.stats.as_ref().unwrap();
        eprintln!(
            "{expected:?} switch cost: n={} p50={} p90={} p99={} max={}",
            cost.count, stats.p50, stats.p90, stats.p99, stats.max
        );
        assert!(
            cost.count as f64 >= 0.99 * class.switches() as f64,
            "{} samples for {} switches",
            cost.count,
            class.switches()
        );
        assert!(
            cost.count <= class.switches(),
            "{} samples for {} switches",
            cost.count,
            class.switches()
        );
        assert!((30..100_000).contains(&stats.p50), "implausible p50 {}", stats.p50);
        assert!(stats.min <= stats.p50 && stats.p50 <= stats.p90 && stats.p90 <= stats.p99 && stats.p99 <= stats.max);
    }
    // Each of the class's switches ends one slice (oncpu) and one absence
    // (offcpu) of a workload task, so the totals must match the kernel's:
    // oncpu = time both ran (schedstat sum_exec_runtime), offcpu = loop time
    // minus that, runq = time both waited runnable (schedstat run_delay).
    // Margins: 3 % for the switches at the loop's edges and the few slices
    // ended by other classes (preemption by a kernel thread).
    let close = |name: &str, seen: u64, truth: u64, per_sample_slack: u64| {
        let slack = per_sample_slack * class.switches();
        eprintln!("{expected:?} {name}: tracer {seen} ns, kernel {truth} ns");
        let err = seen.abs_diff(truth).saturating_sub(slack) as f64 / truth as f64;
        assert!(
            err < 0.03,
            "{name}: tracer {seen} ns vs kernel {truth} ns ({:.1} % off beyond the slack)",
            err * 100.0
        );
    };
    close("oncpu total", sum(Metric::Oncpu).unwrap(), outcome.run_ns, 0);
    if probe == ProbeKind::TpBtf {
        close(
            "offcpu total",
            sum(Metric::Offcpu).unwrap(),
            outcome.loop_ns - outcome.run_ns,
            0,
        );
        // From sched_info the kernel's own numbers, exactly; from the wakeup
        // program ~150 ns more per wait (it ends at sched_switch, the kernel at
        // the run-queue clock update at the start of __schedule()).
        let slack = if probes.runq_from_sched_info { 0 } else { 300 };
        close("runq total", sum(Metric::Runq).unwrap(), outcome.wait_ns, slack);
    } else {
        assert!(sum(Metric::Offcpu).is_none() && sum(Metric::Runq).is_none());
    }
    for m in [Metric::Oncpu, Metric::Offcpu, Metric::Runq]
        .into_iter()
        .filter(|&m| probes.measured.contains(m))
    {
        let n = class.latency(m).unwrap().count;
        assert!(
            n as f64 >= 0.97 * class.switches() as f64 && n <= class.switches(),
            "{}: {n} samples for {} switches",
            m.key(),
            class.switches()
        );
    }
}

#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn thread_ping_pong_is_thread_class() {
    check_class(PingPong::Threads, Class::Thread, Class::Process, ProbeKind::TpBtf);
}

#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn thread_ping_pong_with_the_tracepoint_probe() {
    check_class(PingPong::Threads, Class::Thread, Class::Process, ProbeKind::Tracepoint);
}

#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn process_ping_pong_with_the_tracepoint_probe() {
    check_class(
        PingPong::Processes,
        Class::Process,
        Class::Thread,
        ProbeKind::Tracepoint,
    );
}

/// Both probes attached at once see the same workload the same way: every
/// class on the workload's CPU, voluntary and preempted, within a handful.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn both_probes_agree() {
    let (btf, tp) = (attach_with(ProbeKind::TpBtf), attach_with(ProbeKind::Tracepoint));
    assert_eq!((btf.probe, tp.probe), ("tp_btf", "tracepoint"));
    let cpus = [workload_cpu()];
    let (b0, t0) = (
        btf.snapshot_cpus(Some(&cpus)).unwrap(),
        tp.snapshot_cpus(Some(&cpus)).unwrap(),
    );
    workload::run(&Spec::new(PingPong::Threads, workload_cpu(), 30_000)).unwrap();
    workload::run(&Spec::new(PingPong::Processes, workload_cpu(), 30_000)).unwrap();
    let (b, t) = (
        btf.snapshot_cpus(Some(&cpus)).unwrap().since(&b0),
        tp.snapshot_cpus(Some(&cpus)).unwrap().since(&t0),
    );
    assert_eq!(t.unresolved, 0, "the tracepoint probe did not know some tasks");
    let (bc, tc) = (
        b.per_cpu_counts[workload_cpu()].by_class,
        t.per_cpu_counts[workload_cpu()].by_class,
    );
    eprintln!("tp_btf {bc:?}\ntracepoint {tc:?}");
    for class in Class::ALL {
        for kind in 0..2 {
            let (x, y) = (bc[class.index()][kind], tc[class.index()][kind]);
            // The two programs attach a moment apart and read their snapshots
            // a moment apart: a few switches of slack, nothing more.
            assert!(
                x.abs_diff(y) <= 20 + x / 1000,
                "{class:?}[{kind}]: tp_btf {x}, tracepoint {y}"
            );
        }
    }
}

#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn process_ping_pong_is_process_class() {
    check_class(PingPong::Processes, Class::Process, Class::Thread, ProbeKind::TpBtf);
}

/// Ids of the loaded BPF programs named like ours (by id, so that programs of
/// another tracer instance coming and going do not confuse the count).
fn our_programs() -> BTreeSet<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| matches!(p.name_as_str(), Some("sched_switch" | "sched_exit")))
        .map(|p| p.id())
        .collect()
}

/// Waits (up to 2 s) until none of `ids` is loaded any more; the kernel frees
/// a program shortly after its last fd closes.
fn assert_unloaded(ids: &BTreeSet<u32>, what: &str) {
    for _ in 0..100 {
        if our_programs().is_disjoint(ids) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{what}: programs {:?} still loaded",
        our_programs().intersection(ids).collect::<Vec<_>>()
    );
}

/// Kills the child if a test fails before it ends, so no tracer outlives its test.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn programs_detach_when_probes_drop() {
    let before = our_programs();
    let probes = attach();
    let ours: BTreeSet<u32> = our_programs().difference(&before).copied().collect();
    assert_eq!(ours.len(), 2, "{NEEDS_ROOT}: expected our two programs, found {ours:?}");
    drop(probes);
    assert_unloaded(&ours, "after drop");
}

fn tracer_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracer"))
}

fn parse_report(line: &str) -> Value {
    let v = parse_report_any_probe(line);
    assert_eq!(v["probe"], "tp_btf");
    v
}

/// Checks a JSON report's internal consistency, whichever probe made it.
fn parse_report_any_probe(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let classes = ["thread", "process", "kernel", "idle"];
    let sum: u64 = classes
        .iter()
        .map(|c| v["classes"][c]["switches"].as_u64().unwrap())
        .sum();
    assert_eq!(
        v["switches"].as_u64().unwrap(),
        sum,
        "switches is the sum of the classes: {line}"
    );
    for c in classes {
        let class = &v["classes"][c];
        let (vol, pre) = (
            class["voluntary"].as_u64().unwrap(),
            class["preempted"].as_u64().unwrap(),
        );
        assert_eq!(
            vol + pre,
            class["switches"].as_u64().unwrap(),
            "{c}: voluntary + preempted: {line}"
        );
    }
    assert_eq!(v["kernel_release"].as_str().unwrap(), tracer::kernel_release());
    v
}

/// The binary, end to end: `tracer --json -d` while a thread ping-pong runs.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn cli_json_sees_the_workload() {
    let mut child = Reaper(
        tracer_cmd()
            .args(["--json", "-d", "4s"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Give it time to attach (well under 1 s here), then run the workload.
    std::thread::sleep(Duration::from_millis(1500));
    let outcome = workload::run(&Spec::new(PingPong::Threads, workload_cpu(), ROUND_TRIPS)).unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "tracer failed: {status:?}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object per report: {stdout}");
    let v = parse_report(lines[0]);
    let d = v["duration_ns"].as_u64().unwrap();
    assert!((3_900_000_000..5_000_000_000).contains(&d), "duration_ns {d}");
    let thread = v["classes"]["thread"]["switches"].as_u64().unwrap();
    let truth = outcome.switches();
    // System-wide, so other processes' thread switches add to it; allow 5 % of
    // the workload for them, far below what a misclassification would move.
    assert!(
        thread as f64 >= 0.99 * truth as f64,
        "thread {thread} < 99 % of {truth}"
    );
    assert!(
        (thread as f64) <= 1.05 * truth as f64 + 2000.0,
        "thread {thread} vs {truth}"
    );
    let cost = &v["classes"]["thread"]["switch_cost_ns"];
    assert!(cost["count"].as_u64().unwrap() as f64 >= 0.99 * truth as f64);
    for key in ["min", "p50", "p90", "p99", "p999", "max"] {
        assert!(cost[key].as_u64().is_some(), "{key} missing: {cost}");
    }
}

/// Ctrl-C and SIGTERM: detach, print the final report, exit 0; no program left.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn signals_end_with_a_final_report() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let before = our_programs();
        let mut child = Reaper(tracer_cmd().arg("--json").stdout(Stdio::piped()).spawn().unwrap());
        std::thread::sleep(Duration::from_millis(1500));
        let ours: BTreeSet<u32> = our_programs().difference(&before).copied().collect();
        assert_eq!(ours.len(), 2, "tracer did not attach: {ours:?}");
        // SAFETY: sends a signal to our own child.
        assert_eq!(unsafe { libc::kill(child.0.id() as i32, signal) }, 0);
        let status = child.0.wait().unwrap();
        let mut stdout = String::new();
        std::io::Read::read_to_string(child.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        assert!(status.success(), "signal {signal}: exit {status:?}");
        let v = parse_report(stdout.trim());
        assert!(v["duration_ns"].as_u64().unwrap() >= 1_000_000_000);
        assert!(v["switches"].as_u64().unwrap() > 0);
        assert_unloaded(&ours, "after the signal");
    }
}

/// `--interval`: one line per interval, each covering that interval.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn interval_reports_one_line_each() {
    let mut child = Reaper(
        tracer_cmd()
            .args(["--json", "-i", "400ms", "-d", "2s"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let lines: Vec<String> = BufReader::new(stdout).lines().map(Result::unwrap).collect();
    assert!(child.0.wait().unwrap().success());
    assert_eq!(lines.len(), 5, "{lines:?}");
    let mut total = 0;
    for line in &lines {
        let v = parse_report(line);
        let d = v["duration_ns"].as_u64().unwrap();
        assert!((300_000_000..600_000_000).contains(&d), "interval of {d} ns");
        total += d;
    }
    assert!(
        (1_900_000_000..2_300_000_000).contains(&total),
        "intervals add up to {total}"
    );
}

/// The human report names every class and, on this kernel, the switch cost.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn human_report_has_every_class() {
    let out = tracer_cmd().args(["-d", "1s"]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    for class in ["thread", "process", "kernel", "idle"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(class)),
            "no {class} row:\n{stdout}"
        );
    }
    assert!(stdout.contains("p99.9"));
    assert!(stdout.contains("switch_cost_ns, class idle"), "{stdout}");
}

/// Without privileges: one clear line, exit 1, no panic.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn unprivileged_gets_one_clear_line() {
    // Drop to `nobody` with no capabilities at all.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_tracer"))
        .args(["-d", "1s"])
        .output()
        .expect("setpriv (util-linux) is needed for this test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("CAP_BPF") && lines[0].contains("sudo"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

/// A kernel without BTF (simulated by hiding /sys/kernel/btf in a private
/// mount namespace): one clear line naming what is missing.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn missing_btf_falls_back_or_says_what_is_missing() {
    let hidden = |args: &str| {
        let script = format!(
            "mount -t tmpfs none /sys/kernel/btf && exec {} {args}",
            env!("CARGO_BIN_EXE_tracer")
        );
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap()
    };
    // By default: one line saying what is missing and what is used instead.
    let out = hidden("--json -d 1s");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let notes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("/sys/kernel/btf/vmlinux"))
        .collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    assert!(
        notes[0].contains("CONFIG_DEBUG_INFO_BTF") && notes[0].contains("tracepoint probe"),
        "{stderr}"
    );
    assert!(stderr.contains("runq_latency_ns unavailable"), "{stderr}");
    let v = parse_report_any_probe(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(v["probe"], "tracepoint");
    assert!(v["classes"]["thread"]["runq_latency_ns"].is_null());
    // Asking for tp_btf: one clear line, exit 1.
    let out = hidden("--probe tp_btf -d 1s");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("/sys/kernel/btf/vmlinux") && lines[0].contains("CONFIG_DEBUG_INFO_BTF"),
        "{stderr}"
    );
}

/// `tracer bench` with small counts: its JSON is consistent with itself and
/// with the round trips it ran, and its own checks pass on this machine.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn bench_json_is_consistent() {
    for (extra, via) in [
        (&[][..], "pipe"),
        (&["--via", "futex", "--working-set", "64K"][..], "futex"),
    ] {
        let rt = 20_000u64;
        let out = tracer_cmd()
            .args(["bench", "--json", "--runs", "2", "--round-trips", &rt.to_string()])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["runs"], 2);
        assert_eq!(v["round_trips"], rt);
        assert_eq!(v["via"], via);
        assert_eq!(v["problems"].as_array().unwrap().len(), 0, "{v}");
        for (w, class) in [("thread", "thread"), ("process", "process")] {
            let w = &v[w];
            let switches = w["switches"].as_u64().unwrap();
            assert!(
                switches + 1 >= 2 * rt && switches as f64 <= 2.1 * rt as f64,
                "{switches} switches for {rt} round trips"
            );
            assert_eq!(w["expected_class"], class);
            assert!(w["expected_class_share"].as_f64().unwrap() >= 0.99);
            let spread = |s: &Value| {
                let (min, med, max) = (
                    s["min"].as_u64().unwrap(),
                    s["median"].as_u64().unwrap(),
                    s["max"].as_u64().unwrap(),
                );
                assert!(min <= med && med <= max, "{s}");
                med
            };
            assert!(spread(&w["rtt_ns"]) > 0);
            let c = &w["switch_cost_ns"];
            let medians: Vec<u64> = ["p50", "p90", "p99", "p999"].iter().map(|p| spread(&c[p])).collect();
            assert!(medians.windows(2).all(|m| m[0] <= m[1]), "{medians:?}");
        }
        let ratio = v["process_over_thread_p50"].as_f64().unwrap();
        let t = v["thread"]["switch_cost_ns"]["p50"]["median"].as_f64().unwrap();
        let p = v["process"]["switch_cost_ns"]["p50"]["median"].as_f64().unwrap();
        assert!((ratio - p / t).abs() < 1e-3, "{ratio} vs {p}/{t}");
        assert!(
            v["verdict"].as_str().unwrap().starts_with("a process switch costs"),
            "{v}"
        );
    }
}

/// JSON lines printed by `tracer ping-pong` (ground truth) and the report.
fn split_output(stdout: &str) -> (Vec<Value>, Value) {
    let mut helpers = Vec::new();
    let mut report = None;
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v.get("classes").is_some() {
            report = Some(v);
        } else {
            helpers.push(v);
        }
    }
    (helpers, report.unwrap_or_else(|| panic!("no report in: {stdout}")))
}

fn processes(report: &Value) -> Vec<Value> {
    report["processes"].as_array().expect("processes").clone()
}

fn class_switches(report: &Value, class: &str) -> u64 {
    report["classes"][class]["switches"].as_u64().unwrap()
}

/// Runs an unrelated process ping-pong on CPU 0 until dropped, so that a
/// filter has something to keep out.
struct Noise {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Noise {
    fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut switches = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                switches += workload::run(&Spec::new(PingPong::Processes, 0, 5_000))
                    .unwrap()
                    .switches();
            }
            switches
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it; returns how many switches it made.
    fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// `-- COMMAND`: a shell that runs a thread ping-pong and a process ping-pong
/// (exec'd children of the shell, the second forking a child of its own) is
/// traced whole, while an unrelated process ping-pong runs beside it and is
/// left out. Per process, `out` matches the kernel's count for each helper.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn command_tree_is_traced_and_nothing_else() {
    let exe = env!("CARGO_BIN_EXE_tracer");
    let rt = 30_000u64;
    let script = format!(
        "{exe} ping-pong --kind threads --cpu 1 --round-trips {rt} && {exe} ping-pong --kind processes --cpu 1 --round-trips {rt}"
    );
    let noise = Noise::start();
    std::thread::sleep(Duration::from_millis(200));
    let out = tracer_cmd()
        .args([
            "--json",
            "--per-process",
            "--top",
            "1000",
            "-m",
            "none",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    let noise_switches = noise.stop();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (helpers, report) = split_output(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(helpers.len(), 2, "{helpers:?}");
    let (threads, procs) = (&helpers[0], &helpers[1]);
    let truth_thread = threads["switches"].as_u64().unwrap();
    let truth_process = procs["switches"].as_u64().unwrap();
    let (thread, process) = (class_switches(&report, "thread"), class_switches(&report, "process"));
    eprintln!(
        "traced: thread {thread} (kernel {truth_thread}), process {process} (kernel {truth_process}); noise made {noise_switches} switches"
    );
    // Wanted: the command's tree, threads and exec'd/forked children alike.
    assert!(thread as f64 >= 0.99 * truth_thread as f64);
    assert!(process as f64 >= 0.99 * truth_process as f64);
    // Unwanted: the noise (process switches on CPU 0) must not be in it. It
    // made far more than the allowance while the command ran.
    assert!(noise_switches > 20_000, "the noise did not run: {noise_switches}");
    assert!(
        process as f64 <= 1.01 * truth_process as f64 + 2_000.0,
        "process {process}: unrelated switches got in (kernel counted {truth_process} for the command)"
    );

    let procs_list = processes(&report);
    let me = std::process::id() as u64;
    assert!(
        procs_list.iter().all(|p| p["tgid"].as_u64() != Some(me)),
        "the test process was traced"
    );
    for helper in &helpers {
        let tgid = helper["tgid"].as_u64().unwrap();
        let kernel = helper["process_switches"].as_u64().unwrap();
        let entry = procs_list
            .iter()
            .find(|p| p["tgid"].as_u64() == Some(tgid))
            .unwrap_or_else(|| panic!("helper {tgid} missing from {procs_list:?}"));
        let out_sum: u64 = ["thread", "process", "kernel", "idle"]
            .iter()
            .map(|c| entry["out"][c].as_u64().unwrap())
            .sum();
        // The kernel's count was read just before the helper printed and
        // exited; its last switches (printing, exiting threads) come after.
        assert!(
            out_sum >= kernel && out_sum <= kernel + 20,
            "process {tgid}: out {out_sum}, kernel counted {kernel}"
        );
        assert_eq!(entry["comm"], "tracer");
    }
    // The process ping-pong's forked child is in the tree too.
    assert!(
        procs_list.len() >= 4,
        "sh, two helpers and a forked child: {procs_list:?}"
    );
}

/// Two identical thread ping-pong processes held at the start, one pinned to
/// CPU 1 (wanted) and one to CPU 0 (unwanted).
struct TwoHelpers {
    wanted: Reaper,
    unwanted: Reaper,
}

/// What a filtered run saw of [`TwoHelpers`].
struct TwoHelpersRun {
    report: Value,
    /// The kernel's count of each helper's ping-pong switches.
    wanted: u64,
    unwanted: u64,
}

impl TwoHelpers {
    fn start() -> Self {
        let helper = |cpu: &str| {
            Reaper(
                Command::new(env!("CARGO_BIN_EXE_tracer"))
                    .args([
                        "ping-pong",
                        "--kind",
                        "threads",
                        "--round-trips",
                        "50000",
                        "--wait-stdin",
                        "--cpu",
                        cpu,
                    ])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap(),
            )
        };
        Self {
            wanted: helper("1"),
            unwanted: helper("0"),
        }
    }

    /// Starts tracer with `args`, lets both helpers run, stops tracer.
    fn run_under(mut self, args: &[&str]) -> TwoHelpersRun {
        use std::io::Write as _;
        let mut tracer = Reaper(
            tracer_cmd()
                .arg("--json")
                .args(args)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(1500));
        for h in [&mut self.wanted, &mut self.unwanted] {
            h.0.stdin.take().unwrap().write_all(b"go\n").unwrap();
        }
        let mut truth = Vec::new();
        for h in [&mut self.wanted, &mut self.unwanted] {
            assert!(h.0.wait().unwrap().success());
            let mut s = String::new();
            std::io::Read::read_to_string(h.0.stdout.as_mut().unwrap(), &mut s).unwrap();
            truth.push(
                serde_json::from_str::<Value>(s.trim()).unwrap()["switches"]
                    .as_u64()
                    .unwrap(),
            );
        }
        // SAFETY: signals our own child.
        unsafe { libc::kill(tracer.0.id() as i32, libc::SIGINT) };
        assert!(tracer.0.wait().unwrap().success());
        let mut stdout = String::new();
        std::io::Read::read_to_string(tracer.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        let (_, report) = split_output(&stdout);
        TwoHelpersRun {
            report,
            wanted: truth[0],
            unwanted: truth[1],
        }
    }
}

impl TwoHelpersRun {
    /// The wanted helper's switches are all there, the unwanted one's are not.
    fn assert_only_wanted(&self, filter: &str) {
        let thread = class_switches(&self.report, "thread");
        eprintln!(
            "{filter}: thread {thread}, wanted made {}, unwanted made {}",
            self.wanted, self.unwanted
        );
        assert!(
            thread as f64 >= 0.99 * self.wanted as f64,
            "{filter}: wanted {thread} of {}",
            self.wanted
        );
        assert!(
            thread as f64 <= 1.01 * self.wanted as f64 + 200.0,
            "{filter}: unwanted got in: {thread} vs {} (+{} unwanted)",
            self.wanted,
            self.unwanted
        );
    }
}

/// `--pid`: of two identical thread ping-pongs, only the named one is traced.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn pid_filter_keeps_one_process() {
    let helpers = TwoHelpers::start();
    let (wanted, unwanted) = (helpers.wanted.0.id(), helpers.unwanted.0.id());
    let run = helpers.run_under(&["--per-process", "-m", "none", "-p", &wanted.to_string()]);
    run.assert_only_wanted("--pid");
    let tgids: Vec<u64> = processes(&run.report)
        .iter()
        .map(|p| p["tgid"].as_u64().unwrap())
        .collect();
    assert!(tgids.contains(&u64::from(wanted)), "{tgids:?}");
    assert!(!tgids.contains(&u64::from(unwanted)), "{tgids:?}");
}

/// `--cpu` and `--comm`, through the library: the filter keeps a pinned
/// thread ping-pong when it selects it and drops it when it does not.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn cpu_and_comm_filters() {
    use tracer::filter::Filter;
    let comm = {
        let c = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
        c.trim().to_owned()
    };
    let cases = [
        (
            "cpu 1",
            Filter::new(&[], &[], None, Some(&[1]), None, false).unwrap(),
            true,
        ),
        (
            "cpu 0",
            Filter::new(&[], &[], None, Some(&[0]), None, false).unwrap(),
            false,
        ),
        (
            "comm of the workload",
            Filter::new(&[], &[], Some(&comm), None, None, false).unwrap(),
            true,
        ),
        (
            "another comm",
            Filter::new(&[], &[], Some("no-such-task"), None, None, false).unwrap(),
            false,
        ),
    ];
    for (name, filter, wanted) in cases {
        let probes = Probes::attach(ProbeOptions {
            metrics: MetricSet::ALL,
            filter,
            per_process: false,
            probe: ProbeKind::TpBtf,
        })
        .unwrap();
        let before = probes.snapshot().unwrap();
        // The workload threads inherit this thread's name.
        let outcome = workload::run(&Spec::new(PingPong::Threads, 1, 20_000)).unwrap();
        let delta = probes.snapshot().unwrap().since(&before);
        let thread: u64 = (0..delta.per_cpu_counts.len())
            .map(|cpu| delta.cpu_switches(cpu, Class::Thread))
            .sum();
        let truth = outcome.switches();
        eprintln!("{name}: thread {thread}, kernel {truth}");
        if wanted {
            assert!(thread as f64 >= 0.99 * truth as f64, "{name}: {thread} of {truth}");
            // Latencies of a filtered run still come out.
            assert!(delta.latency(Metric::Oncpu).unwrap()[Class::Thread.index()].count() > 0);
        } else {
            assert!(
                (thread as f64) < 0.01 * truth as f64,
                "{name}: {thread} of {truth} got through"
            );
        }
    }
}

/// Under sudo, `-- COMMAND` runs as the invoking user (SUDO_UID/SUDO_GID),
/// not as root, and its exit status becomes tracer's.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn command_runs_as_the_sudo_user_and_passes_its_status() {
    let out = tracer_cmd()
        .args(["--json", "-m", "none", "--", "sh", "-c", "id -u; id -g; exit 3"])
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .env("SUDO_USER", "nobody")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('{')).collect();
    assert_eq!(ids, ["65534", "65534"], "{stdout}");
    parse_report(stdout.lines().find(|l| l.starts_with('{')).unwrap());
}

/// A cgroup v2 made for the test, removed when dropped.
struct TestCgroup(std::path::PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0.join("sub"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `--cgroup`: a workload in a child cgroup of the named one is traced, an
/// identical one outside is not.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn cgroup_filter_keeps_the_subtree() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(mount) = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split_whitespace().next()? == "cgroup2").then(|| pre.split_whitespace().nth(4).map(str::to_owned))?
    }) else {
        eprintln!("skipped: this kernel has no cgroup v2 hierarchy mounted");
        return;
    };
    let cg = TestCgroup(std::path::Path::new(&mount).join(format!("tracer-test-{}", std::process::id())));
    std::fs::create_dir_all(cg.0.join("sub")).unwrap();
    let helpers = TwoHelpers::start();
    std::fs::write(cg.0.join("sub/cgroup.procs"), helpers.wanted.0.id().to_string()).unwrap();
    helpers
        .run_under(&["-m", "none", "--cgroup", cg.0.to_str().unwrap()])
        .assert_only_wanted("--cgroup");
}

/// Task churn under `-- COMMAND --per-process`: many short-lived threads and
/// processes. Every one of them is in the report, and per process `out`
/// matches the kernel's accounting, allowing one switch per exiting thread
/// (the kernel folds a thread's counters into its process before the
/// thread's last switch).
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn churn_is_fully_accounted_per_process() {
    let exe = env!("CARGO_BIN_EXE_tracer");
    let out = tracer_cmd()
        .args([
            "--json",
            "--per-process",
            "--top",
            "100000",
            "-m",
            "all",
            "--",
            exe,
            "churn",
        ])
        .args(["--threads", "60", "--processes", "60"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (helpers, report) = split_output(&String::from_utf8(out.stdout).unwrap());
    parse_report(&report.to_string());
    let truth = &helpers[0];
    let procs = processes(&report);
    let out_of = |tgid: u64| -> Option<u64> {
        let p = procs.iter().find(|p| p["tgid"].as_u64() == Some(tgid))?;
        Some(
            ["thread", "process", "kernel", "idle"]
                .iter()
                .map(|c| p["out"][c].as_u64().unwrap())
                .sum(),
        )
    };
    let tgid = truth["tgid"].as_u64().unwrap();
    let threads = truth["threads"].as_u64().unwrap();
    let (seen, kernel) = (out_of(tgid).unwrap(), truth["self_switches"].as_u64().unwrap());
    eprintln!("churn parent: out {seen}, kernel {kernel}, {threads} threads exited");
    // Its own last switches (printing, exiting) come after the count: +20.
    assert!(
        seen >= kernel && seen <= kernel + threads + 20,
        "parent: out {seen}, kernel {kernel}"
    );
    let children: Vec<u64> = truth["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    let mut children_out = 0;
    for &child in &children {
        children_out += out_of(child).unwrap_or_else(|| panic!("child {child} missing from the report"));
    }
    let kernel_children = truth["children_switches"].as_u64().unwrap();
    eprintln!(
        "churn children: out {children_out}, kernel {kernel_children}, {} processes exited",
        children.len()
    );
    assert!(
        children_out >= kernel_children && children_out <= kernel_children + children.len() as u64,
        "children: out {children_out}, kernel {kernel_children}"
    );
    assert!(report["processes_dropped"].as_u64() == Some(0));
}

/// A pinned pipe ping-pong between two threads that tell their tids first
/// and start on `go`; returns the kernel's count of their switches.
fn tid_ping_pong(
    cpu: usize,
    round_trips: u64,
    tids: std::sync::mpsc::Sender<u32>,
    go: std::sync::Arc<std::sync::Barrier>,
) -> u64 {
    let mut fds = [0i32; 4];
    // SAFETY: two pipes into a four-element array.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        assert_eq!(libc::pipe(fds.as_mut_ptr().add(2)), 0);
    }
    let side = move |rx: i32,
                     tx: i32,
                     first: bool,
                     tids: std::sync::mpsc::Sender<u32>,
                     go: std::sync::Arc<std::sync::Barrier>| {
        // SAFETY: an all-zero cpu_set_t is valid; pins this thread; gettid and
        // getrusage have no preconditions; one-byte reads and writes on our pipes.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
            tids.send(libc::gettid() as u32).unwrap();
            go.wait();
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
            let before = ru.ru_nvcsw + ru.ru_nivcsw;
            let mut b = [0u8];
            for _ in 0..round_trips {
                if first {
                    libc::write(tx, b.as_ptr().cast(), 1);
                    libc::read(rx, b.as_mut_ptr().cast(), 1);
                } else {
                    libc::read(rx, b.as_mut_ptr().cast(), 1);
                    libc::write(tx, b.as_ptr().cast(), 1);
                }
            }
            libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
            (ru.ru_nvcsw + ru.ru_nivcsw - before) as u64
        }
    };
    let (t2, g2) = (tids.clone(), go.clone());
    let a = std::thread::spawn(move || side(fds[0], fds[3], true, tids, go));
    let b = std::thread::spawn(move || side(fds[2], fds[1], false, t2, g2));
    let n = a.join().unwrap() + b.join().unwrap();
    // SAFETY: closes the pipes made above.
    unsafe {
        fds.iter().for_each(|&fd| {
            libc::close(fd);
        })
    };
    n
}

/// `--tid`: naming one thread of a ping-pong traces every switch of the
/// pair (each involves it), and nothing of an identical pair beside it.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn tid_filter_keeps_one_thread() {
    use std::sync::{Arc, Barrier, mpsc};
    let go = Arc::new(Barrier::new(5)); // four workers and this thread
    let (tx, rx) = mpsc::channel();
    let (g1, t1) = (go.clone(), tx.clone());
    let wanted = std::thread::spawn(move || tid_ping_pong(1, 30_000, t1, g1));
    let wanted_tids = [rx.recv().unwrap(), rx.recv().unwrap()];
    let (g2, t2) = (go.clone(), tx);
    let unwanted = std::thread::spawn(move || tid_ping_pong(0, 30_000, t2, g2));
    let _ = [rx.recv().unwrap(), rx.recv().unwrap()];
    let filter = tracer::filter::Filter::new(&[], &wanted_tids[..1], None, None, None, false).unwrap();
    let probes = Probes::attach(ProbeOptions {
        metrics: MetricSet::NONE,
        filter,
        per_process: false,
        probe: ProbeKind::TpBtf,
    })
    .unwrap();
    let before = probes.snapshot().unwrap();
    go.wait();
    let (truth, other) = (wanted.join().unwrap(), unwanted.join().unwrap());
    let delta = probes.snapshot().unwrap().since(&before);
    let thread = delta.counts().by_class[Class::Thread.index()].iter().sum::<u64>();
    eprintln!("--tid: thread {thread}, wanted pair made {truth}, unwanted pair made {other}");
    assert!(thread as f64 >= 0.99 * truth as f64, "{thread} of {truth}");
    assert!(
        thread as f64 <= 1.01 * truth as f64 + 200.0,
        "unwanted got in: {thread} vs {truth}"
    );
}

/// Ids of loaded maps with our names.
fn our_maps() -> BTreeSet<u32> {
    aya::maps::loaded_maps()
        .filter_map(Result::ok)
        .filter(|m| {
            matches!(
                m.name_as_str(),
                Some("CPU" | "HISTS" | "TGIDS" | "TIDS" | "CPUS" | "PROCS" | "COMMS")
            )
        })
        .map(|m| m.id())
        .collect()
}

/// SIGKILL: the kernel drops everything tracer had loaded (programs, links,
/// maps are all file descriptors), and the next start works.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn sigkill_leaves_nothing_behind() {
    let (progs_before, maps_before) = (our_programs(), our_maps());
    let mut child = Reaper(
        tracer_cmd()
            .args(["--json", "--per-process"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let progs: BTreeSet<u32> = our_programs().difference(&progs_before).copied().collect();
    let maps: BTreeSet<u32> = our_maps().difference(&maps_before).copied().collect();
    assert!(
        progs.len() >= 2 && maps.len() >= 5,
        "did not attach: {progs:?} {maps:?}"
    );
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_unloaded(&progs, "after SIGKILL");
    for _ in 0..100 {
        if our_maps().is_disjoint(&maps) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        our_maps().is_disjoint(&maps),
        "maps left after SIGKILL: {:?}",
        our_maps().intersection(&maps)
    );
    let again = tracer_cmd().args(["--json", "-d", "500ms"]).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    parse_report(String::from_utf8(again.stdout).unwrap().trim());
}

/// Two tracers at once: each has its own programs and maps, and both count
/// the same workload correctly.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn two_instances_both_count_correctly() {
    let start = || {
        Reaper(
            tracer_cmd()
                .args(["--json", "-d", "4s"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    let (mut a, mut b) = (start(), start());
    std::thread::sleep(Duration::from_millis(1500));
    let truth = workload::run(&Spec::new(PingPong::Threads, workload_cpu(), ROUND_TRIPS))
        .unwrap()
        .switches();
    for t in [&mut a, &mut b] {
        assert!(t.0.wait().unwrap().success());
        let mut s = String::new();
        std::io::Read::read_to_string(t.0.stdout.as_mut().unwrap(), &mut s).unwrap();
        let thread = class_switches(&parse_report(s.trim()), "thread");
        eprintln!("instance: thread {thread}, kernel {truth}");
        assert!(thread as f64 >= 0.99 * truth as f64 && (thread as f64) <= 1.05 * truth as f64 + 2000.0);
    }
}

/// `tracer --json -i ... | head -1`: tracer ends quietly when the reader goes.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn closed_pipe_ends_quietly() {
    let mut child = Reaper(
        tracer_cmd()
            .args(["--json", "-i", "200ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    parse_report(first.trim());
    // The reader is gone now: the next report hits a closed pipe.
    let status = child.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// Process names with control characters or invalid UTF-8 are escaped in
/// the human report and valid in JSON.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn hostile_process_names_are_escaped() {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = std::env::temp_dir().join(format!("tracer-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // exec sets the task name from the file name (first 15 bytes).
    let name: &[u8] = b"\x1b[2J\xffevil\nx";
    let link = dir.join(std::ffi::OsStr::from_bytes(name));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/bin/sleep", &link).unwrap();
    let run = |json: bool| {
        let mut cmd = tracer_cmd();
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .args(["--per-process", "-m", "none", "--"])
            .arg(&link)
            .arg("0.2")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let human = run(false);
    assert!(
        !human.contains(&0x1b) && !human.contains(&0xff),
        "raw control bytes in the report"
    );
    let text = String::from_utf8(human).unwrap();
    assert!(text.contains("\\x1b[2J\\xffevil\\x0ax"), "{text}");
    let json = String::from_utf8(run(true)).expect("JSON output is UTF-8");
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    let procs = processes(&v);
    let comms: Vec<&str> = procs.iter().map(|p| p["comm"].as_str().unwrap()).collect();
    assert!(comms.contains(&"\u{1b}[2J\u{fffd}evil\nx"), "{comms:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The highest switch rate this machine reaches: pinned ping-pongs on both
/// CPUs at once (threads on one, processes on the other). Counts still
/// match the kernel's, per CPU.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn both_cpus_at_full_rate() {
    let probes = attach();
    let before = probes.snapshot().unwrap();
    let started = std::time::Instant::now();
    let threads = std::thread::spawn(|| workload::run(&Spec::new(PingPong::Threads, 0, ROUND_TRIPS)).unwrap());
    let procs = workload::run(&Spec::new(PingPong::Processes, 1, ROUND_TRIPS)).unwrap();
    let threads = threads.join().unwrap();
    let elapsed = started.elapsed();
    let delta = probes.snapshot().unwrap().since(&before);
    let total = delta.counts().by_class.iter().flatten().sum::<u64>();
    eprintln!(
        "{total} switches in {elapsed:?} ({:.0}/s) with all metrics",
        total as f64 / elapsed.as_secs_f64()
    );
    for (cpu, class, outcome) in [(0, Class::Thread, threads), (1, Class::Process, procs)] {
        let seen = delta.cpu_switches(cpu, class);
        assert!(
            seen as f64 >= 0.99 * outcome.switches() as f64,
            "CPU {cpu}: {seen} of {}",
            outcome.switches()
        );
        assert!(
            seen as f64 <= 1.01 * outcome.switches() as f64 + 200.0,
            "CPU {cpu}: {seen} vs {}",
            outcome.switches()
        );
    }
}

/// `--self-stats`: every attached program with its runs and mean run time,
/// and tracer's own CPU time and RSS.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn self_stats_report_the_programs() {
    let mut child = Reaper(
        tracer_cmd()
            .args(["--json", "--self-stats", "-d", "3s"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1200));
    let truth = workload::run(&Spec::new(PingPong::Threads, workload_cpu(), 20_000))
        .unwrap()
        .switches();
    assert!(child.0.wait().unwrap().success());
    let mut s = String::new();
    std::io::Read::read_to_string(child.0.stdout.as_mut().unwrap(), &mut s).unwrap();
    let v = parse_report(s.trim());
    let own = &v["self"];
    let programs = own["programs"].as_array().unwrap();
    let names: Vec<&str> = programs.iter().map(|p| p["name"].as_str().unwrap()).collect();
    // Run-queue latency comes from sched_info here: no wakeup programs.
    assert!(!names.contains(&"sched_wakeup"), "{names:?}");
    for want in ["sched_switch", "sched_exit"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let switch = programs.iter().find(|p| p["name"] == "sched_switch").unwrap();
    // It ran once per switch, system-wide: at least the workload's.
    assert!(switch["runs"].as_u64().unwrap() >= truth, "{switch}");
    assert_eq!(switch["runs"], v["switches"], "one run per switch");
    assert!(switch["mean_ns"].as_u64().unwrap() > 0);
    assert!(own["user_cpu_ns"].as_u64().unwrap() > 0 && own["rss_bytes"].as_u64().unwrap() > 1 << 20);
}
