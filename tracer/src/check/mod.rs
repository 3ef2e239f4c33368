//! `tracer check`: does the tracer work on this kernel? Attaches each probe,
//! runs the pinned thread and process ping-pongs and spinning threads
//! (`spin`) under it, and compares what the tracer saw with the kernel's
//! own accounting (getrusage and /proc/thread-self/schedstat), with stated
//! margins. The live tests and the kernel matrix (`cargo xtask test-kernels`)
//! use the same checks.

mod spin;

use std::collections::BTreeMap;

use serde::Serialize;
use tracer_common::{Class, maps::Metric};

use crate::{
    kernel::btf::BtfError,
    probe::filter::Filter,
    probe::{ProbeError, ProbeKind, ProbeOptions, Probes},
    snapshot::Snapshot,
    snapshot::metrics::MetricSet,
    workload::{self, Outcome, PingPong, Spec},
};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Round trips per workload (each forces two switches).
    pub round_trips: u64,
    /// The CPU both workloads are pinned to.
    pub cpu: usize,
    /// The probes to check, in order.
    pub probes: Vec<ProbeKind>,
    /// See [`ProbeOptions::offcpu_slots`].
    pub offcpu_slots: Option<u32>,
}

/// One comparison of a tracer number with the kernel's.
#[derive(Clone, Debug, Serialize)]
pub struct Item {
    pub name: String,
    /// What the tracer saw; `None` where only the kernel's number counts.
    pub tracer: Option<u64>,
    /// The kernel's number; `None` where there is none (a plausibility check).
    pub kernel: Option<u64>,
    /// The margin, in words.
    pub allowed: String,
    pub pass: bool,
}

/// One workload under one probe.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadCheck {
    pub workload: &'static str,
    /// What ran, in words.
    pub title: String,
    pub class: &'static str,
    pub round_trips: u64,
    pub cpu: usize,
    pub items: Vec<Item>,
}

impl WorkloadCheck {
    pub fn pass(&self) -> bool {
        self.items.iter().all(|i| i.pass)
    }

    /// The failed items, one line each.
    pub fn failures(&self) -> Vec<String> {
        self.items
            .iter()
            .filter(|i| !i.pass)
            .map(|i| {
                format!(
                    "{} {}: tracer {}, kernel {} (allowed: {})",
                    self.workload,
                    i.name,
                    show(i.tracer),
                    show(i.kernel),
                    i.allowed
                )
            })
            .collect()
    }
}

/// One probe: whether it attached, what it measures, and its workloads.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeCheck {
    pub probe: &'static str,
    /// Why the probe cannot be used on this kernel (not a failure: e.g. no
    /// BTF for tp_btf).
    pub unavailable: Option<String>,
    /// Why attaching failed where it should have worked (a failure).
    pub error: Option<String>,
    /// Metrics measured.
    pub metrics: Vec<&'static str>,
    /// Metrics this kernel cannot give with this probe, and why.
    pub missing: BTreeMap<&'static str, String>,
    /// Where the per-thread stamps of threads beyond `offcpu_slots` live:
    /// `task_storage` or `lru_hash`.
    pub task_times: Option<&'static str>,
    /// Off-CPU and run-queue stamps of thread ids below this are in an
    /// array indexed by id (the rest in `task_times`).
    pub offcpu_slots: Option<u32>,
    pub workloads: Vec<WorkloadCheck>,
    pub pass: bool,
    /// The `task_struct` offsets the tp_btf probe loaded with.
    #[serde(skip)]
    pub task_offsets: Option<crate::kernel::btf::TaskOffsets>,
}

/// The whole check.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub kernel_release: String,
    pub btf: bool,
    /// Byte offsets of `task_struct.pid` and `.tgid` read from this kernel's
    /// BTF (they differ between kernel builds; none are compiled in).
    pub task_offsets: Option<BTreeMap<&'static str, u32>>,
    pub probes: Vec<ProbeCheck>,
    /// Every probe that could attach passed every comparison, and at least
    /// one probe attached.
    pub pass: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{kind}: {source}")]
    Workload { kind: &'static str, source: std::io::Error },
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

/// Runs the check; `progress` is told each step.
pub fn run(options: &Options, mut progress: impl FnMut(&str)) -> Result<Check, CheckError> {
    let mut probes = Vec::new();
    for &kind in &options.probes {
        progress(&format!("attaching the {} probe", kind.name()));
        probes.push(check_probe(options, kind, &mut progress)?);
    }
    let pass = probes.iter().all(|p| p.pass) && probes.iter().any(|p| p.unavailable.is_none());
    // Those the tp_btf probe loaded with; read from BTF only when it was
    // not checked.
    let task_offsets = probes
        .iter()
        .find_map(|p| p.task_offsets)
        .or_else(|| {
            crate::kernel::btf::KernelBtf::from_sys()
                .and_then(|btf| btf.task_offsets())
                .ok()
        })
        .map(|o| BTreeMap::from([("pid", o.pid), ("tgid", o.tgid)]));
    Ok(Check {
        kernel_release: crate::kernel::release(),
        btf: std::path::Path::new(crate::kernel::btf::VMLINUX_BTF).exists(),
        task_offsets,
        probes,
        pass,
    })
}

fn check_probe(options: &Options, kind: ProbeKind, progress: &mut impl FnMut(&str)) -> Result<ProbeCheck, CheckError> {
    let mut check = ProbeCheck {
        probe: kind.name(),
        unavailable: None,
        error: None,
        metrics: Vec::new(),
        missing: BTreeMap::new(),
        task_times: None,
        offcpu_slots: None,
        workloads: Vec::new(),
        pass: false,
        task_offsets: None,
    };
    let mut probes = match attach(kind, options.offcpu_slots) {
        Ok(p) => p,
        // Not root: nothing can be checked at all.
        Err(e @ ProbeError::Privilege(_)) => return Err(e.into()),
        Err(e @ ProbeError::Btf(BtfError::Missing(_))) => {
            check.unavailable = Some(e.to_string());
            check.pass = true;
            return Ok(check);
        }
        Err(e) => {
            check.error = Some(e.to_string());
            return Ok(check);
        }
    };
    check.metrics = probes.measured.iter().map(Metric::key).collect();
    check.missing = probes
        .unavailable
        .iter()
        .map(|(m, why)| (m.key(), why.clone()))
        .collect();
    check.task_offsets = probes.task_offsets;
    check.offcpu_slots = Some(probes.offcpu_slots).filter(|&n| n > 0);
    if check.offcpu_slots.is_some() {
        check.task_times = Some(if probes.task_storage {
            "task_storage"
        } else {
            "lru_hash"
        });
    }
    let cpus = [options.cpu];
    // Warm up both workloads under the freshly loaded programs (page faults,
    // caches; under emulation also the first translation of new code), so
    // that the measured runs are what they measure.
    for ping_pong in [PingPong::Threads, PingPong::Processes] {
        let warmup = (options.round_trips / 10).clamp(100, 10_000);
        workload::run(&Spec::new(ping_pong, options.cpu, warmup)).map_err(|source| CheckError::Workload {
            kind: ping_pong_name(ping_pong),
            source,
        })?;
    }
    for ping_pong in [PingPong::Threads, PingPong::Processes] {
        let name = ping_pong.name();
        progress(&format!("{} probe: {name} ping-pong", kind.name()));
        let before = probes.snapshot_cpus(Some(&cpus))?;
        let outcome = workload::run(&Spec::new(ping_pong, options.cpu, options.round_trips)).map_err(|source| {
            CheckError::Workload {
                kind: ping_pong_name(ping_pong),
                source,
            }
        })?;
        let after = probes.snapshot_cpus(Some(&cpus))?;
        check
            .workloads
            .push(compare(ping_pong, options, &outcome, &after.since(&before), &probes));
    }
    progress(&format!("{} probe: spinning threads", kind.name()));
    check.workloads.push(spin::check(options, &mut probes)?);
    check.pass = check.workloads.iter().all(WorkloadCheck::pass);
    Ok(check)
}

fn ping_pong_name(kind: PingPong) -> &'static str {
    match kind {
        PingPong::Threads => "thread ping-pong",
        PingPong::Processes => "process ping-pong",
    }
}

/// Attaches `kind` with all metrics, tracing only this process and the
/// children it forks: switches from and to other tasks on the workload's
/// CPU are still counted, but the latencies measured are the workload's
/// own, which the kernel's accounting of the workload can be held to on a
/// busy machine.
pub fn attach(kind: ProbeKind, offcpu_slots: Option<u32>) -> Result<Probes, ProbeError> {
    Probes::attach(ProbeOptions {
        offcpu_slots,
        metrics: MetricSet::ALL,
        probe: kind,
        filter: Filter {
            tgids: vec![std::process::id()],
            command: true,
            ..Default::default()
        },
        ..Default::default()
    })
}

/// Compares what the tracer saw on the workload's CPU (`delta`) with the
/// kernel's accounting of the workload (`outcome`). Margins:
/// * the workload stayed pinned: at least 2 switches per round trip (- 10);
/// * its class: at least 99 % of the kernel's count (a few are preemptions by
///   kernel threads or switches to idle), at most 1 % + 200 more (background
///   switches of the same class on that CPU; double counting exceeds it);
/// * the other user class: under 1 % of the workload's switches;
/// * voluntary: within 1 % (+ 200 above) of the kernel's `nvcsw`; preempted
///   not more than its `nivcsw` + 200;
/// * each latency: a sample for at least 97 % (switch cost 99 %) of the
///   class's switches and not more (but for [`SNAPSHOT_SKEW`]); switch cost p50 between 30 ns and
///   1 ms; totals (over every class: the workload's waits that another task
///   ends, on a busy machine, are its too) within 3 % of the kernel's: on-CPU = schedstat run time,
///   off-CPU = loop time minus that. Run-queue time has no exact kernel
///   figure here: schedstat run_delay misses the waits after wakeups (it
///   reads the run-queue clock, which the scheduler does not update after a
///   wakeup that preempts), so the total must lie between run_delay (- 3 %)
///   and the off-CPU total.
pub fn compare(
    kind: PingPong,
    options: &Options,
    outcome: &Outcome,
    delta: &Snapshot,
    probes: &Probes,
) -> WorkloadCheck {
    let expected = kind.class();
    let other = if expected == Class::Thread {
        Class::Process
    } else {
        Class::Thread
    };
    let cpu = options.cpu;
    let truth = outcome.switches();
    let mut items = Vec::new();
    let mut item = |name: String, tracer: Option<u64>, kernel: Option<u64>, allowed: String, pass: bool| {
        items.push(Item {
            name,
            tracer,
            kernel,
            allowed,
            pass,
        });
    };
    let pinned_min = (2 * options.round_trips).saturating_sub(10);
    item(
        "switches (pinning held)".into(),
        None,
        Some(truth),
        format!(">= {pinned_min}"),
        truth >= pinned_min,
    );
    let seen = delta.cpu_switches(cpu, expected);
    item(
        format!("{} switches", expected.name()),
        Some(seen),
        Some(truth),
        "-1 % .. +1 % + 200".into(),
        within(seen, truth, 0.01),
    );
    let wrong = delta.cpu_switches(cpu, other);
    item(
        format!("{} switches", other.name()),
        Some(wrong),
        Some(0),
        "< 1 % of the workload's".into(),
        (wrong as f64) < 0.01 * truth as f64,
    );
    let counts = delta.per_cpu_counts[cpu].by_class[expected.index()];
    item(
        "voluntary".into(),
        Some(counts[0]),
        Some(outcome.voluntary),
        "-1 % .. +1 % + 200".into(),
        within(counts[0], outcome.voluntary, 0.01),
    );
    item(
        "preempted".into(),
        Some(counts[1]),
        Some(outcome.involuntary),
        "<= kernel + 200".into(),
        counts[1] <= outcome.involuntary + 200,
    );

    let switches = counts[0] + counts[1];
    let hist = |m: Metric| delta.latency(m).map(|h| &h[expected.index()]);
    // Totals over every class: this traces the workload's tasks only, and a
    // wait that another task (on a busy machine) ends is the workload's too.
    let total = |m: Metric| delta.latency(m).map_or(0, |h| h.iter().map(|c| c.sum_ns).sum::<u64>());
    for metric in probes.measured.iter() {
        let Some(h) = hist(metric) else { continue };
        let n = h.count();
        let min_share = if metric == Metric::SwitchCost { 0.99 } else { 0.97 };
        item(
            format!("{} samples", metric.key()),
            Some(n),
            Some(switches),
            format!(
                ">= {:.0} % of the class's switches, at most {SNAPSHOT_SKEW} more",
                min_share * 100.0
            ),
            n as f64 >= min_share * switches as f64 && n <= switches + SNAPSHOT_SKEW,
        );
        let (total, kernel) = match metric {
            Metric::SwitchCost => {
                let p50 = crate::report::Latency::from_histogram(h).stats.map_or(0, |s| s.p50);
                item(
                    "switch_cost_ns p50".into(),
                    Some(p50),
                    None,
                    "30 ns .. 1 ms".into(),
                    (30..1_000_000).contains(&p50),
                );
                continue;
            }
            Metric::Oncpu => (total(metric), outcome.run_ns),
            Metric::Offcpu => (total(metric), outcome.loop_ns.saturating_sub(outcome.run_ns)),
            Metric::Runq => {
                // schedstat run_delay misses the waits after wakeups (the run
                // queue clock is not updated after a wakeup that preempts), so
                // it is only a floor here; off-CPU time is a ceiling.
                let floor = outcome.wait_ns.saturating_sub(outcome.wait_ns / 33);
                let runq = total(metric);
                let ceiling = probes.measured.contains(Metric::Offcpu).then(|| total(Metric::Offcpu));
                item(
                    format!("{} total", metric.key()),
                    Some(runq),
                    Some(outcome.wait_ns),
                    "run_delay - 3 % .. offcpu_ns total".into(),
                    runq >= floor && ceiling.is_none_or(|c| runq <= c),
                );
                continue;
            }
        };
        let err = total.abs_diff(kernel) as f64 / kernel.max(1) as f64;
        item(
            format!("{} total", metric.key()),
            Some(total),
            Some(kernel),
            "3 %".into(),
            err < 0.03,
        );
    }
    WorkloadCheck {
        workload: kind.name(),
        title: format!(
            "{} ping-pong, {} round trips on CPU {cpu} ({} class)",
            kind.name(),
            options.round_trips,
            expected.name()
        ),
        class: expected.name(),
        round_trips: options.round_trips,
        cpu,
        items,
    }
}

/// Counters and histograms are read one map after the other while the
/// machine runs on: a few switches (seen: 2, of the check's own threads once
/// it is off the workload's CPU again) fall between the two reads.
pub(crate) const SNAPSHOT_SKEW: u64 = 20;

/// `seen` is within `-share .. +share + 200` of `truth`.
fn within(seen: u64, truth: u64, share: f64) -> bool {
    let (seen, truth) = (seen as f64, truth as f64);
    seen >= (1.0 - share) * truth && seen <= (1.0 + share) * truth + 200.0
}

/// A number, or `-` where there is none.
fn show(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

/// The human report.
pub fn table(check: &Check) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kernel {}; BTF {}{}",
        check.kernel_release,
        if check.btf { "yes" } else { "no" },
        check
            .task_offsets
            .as_ref()
            .map(|o| format!(
                " (task_struct.pid at byte {}, .tgid at {})",
                o.get("pid").unwrap_or(&0),
                o.get("tgid").unwrap_or(&0)
            ))
            .unwrap_or_default()
    );
    for p in &check.probes {
        let _ = writeln!(out);
        if let Some(why) = &p.unavailable {
            let _ = writeln!(out, "probe {}: unavailable: {why}", p.probe);
            continue;
        }
        if let Some(e) = &p.error {
            let _ = writeln!(out, "probe {}: FAILED to attach: {e}", p.probe);
            continue;
        }
        let _ = writeln!(
            out,
            "probe {}: measures {}{}",
            p.probe,
            if p.metrics.is_empty() {
                "counts only".to_owned()
            } else {
                p.metrics.join(", ")
            },
            match (p.task_times, p.offcpu_slots) {
                (Some(t), Some(n)) =>
                    format!(" (off-CPU and run-queue stamps in {n} slots by thread id, beyond in {t})"),
                _ => String::new(),
            }
        );
        for (metric, why) in &p.missing {
            let _ = writeln!(out, "  {metric} unavailable: {why}");
        }
        for w in &p.workloads {
            let _ = writeln!(out, "  {}:", w.title);
            for i in &w.items {
                let _ = writeln!(
                    out,
                    "    {:4}  {:<28} tracer {:>14}  kernel {:>14}  allowed {}",
                    if i.pass { "ok" } else { "FAIL" },
                    i.name,
                    show(i.tracer),
                    show(i.kernel),
                    i.allowed
                );
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", if check.pass { "PASS" } else { "FAIL" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins() {
        assert!(within(1000, 1000, 0.01));
        assert!(within(990, 1000, 0.01));
        assert!(!within(989, 1000, 0.01));
        assert!(within(1210, 1000, 0.01));
        assert!(!within(1211, 1000, 0.01));
        assert!(within(0, 0, 0.01));
    }
}
