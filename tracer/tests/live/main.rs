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
    probe::{ProbeKind, ProbeOptions, Probes},
    snapshot::Snapshot,
    snapshot::metrics::{Metric, MetricSet},
    workload::{self, Outcome, PingPong, Spec},
};
use tracer_common::Class;

mod classes;
mod cli;
mod exports;
mod filters;
mod perf_calibrate;
mod perf_cross;
mod reliability;
mod waits;

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
        // Only switch cost can be missing (before Linux 6.16).
        eprintln!("skipping checks of {}: {why}", metric.key());
    }
    probes
}

/// Runs `kind` under the tracer (tracing this process tree, as `tracer check`
/// does); returns what the kernel counted and what the tracer saw on the
/// workload's CPU over the same span.
fn traced(kind: PingPong, probe: ProbeKind) -> (Outcome, Snapshot, Probes) {
    let mut probes = tracer::check::attach(probe, None).unwrap_or_else(|e| panic!("cannot attach: {e}"));
    let cpus = [workload_cpu()];
    let before = probes.snapshot_cpus(Some(&cpus)).unwrap();
    let outcome = workload::run(&Spec::new(kind, workload_cpu(), ROUND_TRIPS)).unwrap();
    let after = probes.snapshot_cpus(Some(&cpus)).unwrap();
    (outcome, after.since(&before), probes)
}

/// Checks that the workload's switches land in `expected` and agree with the
/// kernel's count, and each latency with the kernel's own totals, with the
/// margins `tracer check` states (`tracer::check::compare`).
fn check_class(kind: PingPong, expected: Class, other: Class, probe: ProbeKind) {
    let (outcome, delta, probes) = traced(kind, probe);
    let options = tracer::check::Options {
        round_trips: ROUND_TRIPS,
        cpu: workload_cpu(),
        probes: vec![probe],
        offcpu_slots: None,
    };
    let check = tracer::check::compare(kind, &options, &outcome, &delta, &probes);
    assert_eq!(check.class, expected.name());
    for item in &check.items {
        eprintln!(
            "{}: {} {:?} kernel {:?} (allowed {})",
            if item.pass { "ok" } else { "FAIL" },
            item.name,
            item.tracer,
            item.kernel,
            item.allowed
        );
    }
    // The other user class is among the comparisons, and each measured
    // latency has its sample count and its total (or p50) checked.
    assert!(
        check
            .items
            .iter()
            .any(|i| i.name == format!("{} switches", other.name()))
    );
    for m in probes.measured.iter() {
        assert!(check.items.iter().any(|i| i.name == format!("{} samples", m.key())));
    }
    assert!(check.pass(), "{}", check.failures().join("\n"));
    // Both probes measure the run-queue and off-CPU times.
    assert!(delta.latency(Metric::Offcpu).is_some() && delta.latency(Metric::Runq).is_some());
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

/// Starts tracer with `args` and its stdout piped; killed and reaped on drop.
fn spawn_tracer<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Reaper {
    Reaper(tracer_cmd().args(args).stdout(Stdio::piped()).spawn().unwrap())
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
    assert_eq!(v["kernel_release"].as_str().unwrap(), tracer::kernel::release());
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

/// Runs `tracer --json --per-process <args>` to its end (`args` ends with
/// `-- COMMAND`); returns the helpers' JSON lines and the report.
fn per_process_run(args: &[&str]) -> (Vec<Value>, Value) {
    let out = tracer_cmd()
        .args(["--json", "--per-process"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    split_output(&String::from_utf8(out.stdout).unwrap())
}

fn processes(report: &Value) -> Vec<Value> {
    report["processes"].as_array().expect("processes").clone()
}

/// The per-process row of `tgid`, if the report has it.
fn process_entry(procs: &[Value], tgid: u64) -> Option<&Value> {
    procs.iter().find(|p| p["tgid"].as_u64() == Some(tgid))
}

/// A per-process row's switches out, over every class.
fn switches_out(entry: &Value) -> u64 {
    ["thread", "process", "kernel", "idle"]
        .iter()
        .map(|c| entry["out"][c].as_u64().unwrap())
        .sum()
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
        let mut tracer = spawn_tracer(["--json"].iter().chain(args));
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
                Some("CPU" | "HISTS" | "TGIDS" | "TIDS" | "CPUS" | "PROCS" | "COMMS" | "EXITED")
            )
        })
        .map(|m| m.id())
        .collect()
}

/// Samples of `metric` over every class, and the longest.
fn samples_and_max(delta: &Snapshot, metric: Metric) -> (u64, u64) {
    let hists = delta
        .latency(metric)
        .unwrap_or_else(|| panic!("{} is measured", metric.key()));
    let samples = hists.iter().map(|h| h.count()).sum();
    let max = hists
        .iter()
        .filter_map(|h| tracer::report::Latency::from_histogram(h).stats.map(|s| s.max))
        .max()
        .unwrap_or(0);
    (samples, max)
}
