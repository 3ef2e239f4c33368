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

mod classes;
mod cli;
mod exports;
mod filters;
mod reliability;

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

impl Reaper {
    /// Reads the child's stdout to its end, then waits for it.
    fn finish(&mut self) -> (std::process::ExitStatus, String) {
        let mut stdout = String::new();
        if let Some(out) = self.0.stdout.as_mut() {
            std::io::Read::read_to_string(out, &mut stdout).unwrap();
        }
        (self.0.wait().unwrap(), stdout)
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
            let (status, s) = h.finish();
            assert!(status.success());
            truth.push(
                serde_json::from_str::<Value>(s.trim()).unwrap()["switches"]
                    .as_u64()
                    .unwrap(),
            );
        }
        // SAFETY: signals our own child.
        unsafe { libc::kill(tracer.0.id() as i32, libc::SIGINT) };
        let (status, stdout) = tracer.finish();
        assert!(status.success());
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

/// A cgroup v2 made for the test, removed when dropped.
struct TestCgroup(std::path::PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0.join("sub"));
        let _ = std::fs::remove_dir(&self.0);
    }
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
