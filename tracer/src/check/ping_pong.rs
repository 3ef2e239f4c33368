//! The ping-pong checks: what the tracer saw of a thread or process
//! ping-pong against getrusage and schedstat.

use tracer_common::{Class, metric::Metric};

use super::{Item, Options, SNAPSHOT_SKEW, WorkloadCheck};
use crate::{
    probe::Probes,
    snapshot::Snapshot,
    workload::{Outcome, PingPong},
};

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
    let cpu = options.cpu;
    let mut items = switch_items(expected, options, outcome, delta);
    let counts = delta.per_cpu_counts[cpu].by_class[expected.index()];
    items.extend(latency_items(expected, counts[0] + counts[1], outcome, delta, probes));
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

/// The switch counts of the workload's class and the other user class on its
/// CPU, and the voluntary / preempted split, against the kernel's.
fn switch_items(expected: Class, options: &Options, outcome: &Outcome, delta: &Snapshot) -> Vec<Item> {
    let other = if expected == Class::Thread {
        Class::Process
    } else {
        Class::Thread
    };
    let cpu = options.cpu;
    let truth = outcome.switches();
    let mut items = Vec::new();
    let mut item = |name: String, tracer: Option<u64>, kernel: Option<u64>, allowed: String, pass: bool| {
        items.push(Item::new(name, tracer, kernel, allowed, pass));
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
    items
}

/// Each measured latency of the workload's class (`switches` its switches
/// as the tracer counted them): samples and totals against the kernel's.
fn latency_items(expected: Class, switches: u64, outcome: &Outcome, delta: &Snapshot, probes: &Probes) -> Vec<Item> {
    let mut items = Vec::new();
    let mut item = |name: String, tracer: Option<u64>, kernel: Option<u64>, allowed: String, pass: bool| {
        items.push(Item::new(name, tracer, kernel, allowed, pass));
    };
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
    items
}

/// `seen` is within `-share .. +share + 200` of `truth`.
fn within(seen: u64, truth: u64, share: f64) -> bool {
    let (seen, truth) = (seen as f64, truth as f64);
    seen >= (1.0 - share) * truth && seen <= (1.0 + share) * truth + 200.0
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
