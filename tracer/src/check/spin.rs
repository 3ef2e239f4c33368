//! The check where schedstat's `run_delay` is ground truth for run-queue
//! time: threads spinning on one CPU, every wait a tick preemption.

use std::time::Duration;

use tracer_common::{Class, metric::Metric};

use super::{CheckError, Item, Options, SNAPSHOT_SKEW, WorkloadCheck};
use crate::{probe::Probes, snapshot::ClassHistogram, workload::spinners};

/// Spinning threads, and how long each spins.
const THREADS: usize = 2;
const SPIN: Duration = Duration::from_millis(300);

/// Runs the spinners on `options.cpu` under `probes` and compares, over every
/// class (a kernel thread may preempt a spinner too):
/// * preemptions: at least 10 (else the workload did not do what it is for);
/// * run-queue and on-CPU samples: at least 97 % of the spinners' switches,
///   at most 3 per thread more (its start: created, then moved to the CPU)
///   and [`SNAPSHOT_SKEW`];
/// * totals within 3 %: run-queue = schedstat run_delay (exact here: each
///   wait starts at a switch-out of a still-runnable spinner and ends at its
///   switch-in, both at a run-queue clock update), on-CPU = its run time.
///   The tracer's span also holds each spinner's start, before it reads its
///   counters (it is moved to the CPU and waits there behind the other):
///   for each sample more than the kernel's switches, the longest sample
///   more is allowed above. Under emulation such a wait is a slice of
///   several ms, 2-6 % of the total.
pub fn check(options: &Options, probes: &mut Probes) -> Result<WorkloadCheck, CheckError> {
    let cpus = [options.cpu];
    let before = probes.snapshot_cpus(Some(&cpus))?;
    let spun = spinners::spin(options.cpu, THREADS, SPIN).map_err(|source| CheckError::Workload {
        kind: "spinning threads",
        source,
    })?;
    let delta = probes.snapshot_cpus(Some(&cpus))?.since(&before);
    let mut items = vec![Item {
        name: "preemptions (pinning held)".into(),
        tracer: None,
        kernel: Some(spun.involuntary),
        allowed: ">= 10, every spinner still on the CPU".into(),
        pass: spun.involuntary >= 10 && spun.stayed_on_cpu,
    }];
    let extra = 3 * THREADS as u64 + SNAPSHOT_SKEW;
    for (metric, kernel, what) in [
        (Metric::Runq, spun.wait_ns, "run_delay"),
        (Metric::Oncpu, spun.run_ns, "run time"),
    ] {
        let Some(hists) = delta.latency(metric) else { continue };
        let (count, sum, longest) = totals(hists);
        let n = spun.switches;
        items.push(Item {
            name: format!("{} samples", metric.key()),
            tracer: Some(count),
            kernel: Some(n),
            allowed: format!(">= 97 % of the switches, at most {extra} more"),
            pass: count as f64 >= 0.97 * n as f64 && count <= n + extra,
        });
        let starts = count.saturating_sub(n) * longest;
        let (low, high) = (0.97 * kernel as f64, 1.03 * kernel as f64 + starts as f64);
        items.push(Item {
            name: format!("{} total", metric.key()),
            tracer: Some(sum),
            kernel: Some(kernel),
            allowed: format!("3 % of schedstat {what} (+ {starts} ns for the starts)"),
            pass: (low..=high).contains(&(sum as f64)),
        });
    }
    Ok(WorkloadCheck {
        workload: "spinners",
        title: format!(
            "{THREADS} threads spinning {} ms each on CPU {} (tick preemption)",
            SPIN.as_millis(),
            options.cpu
        ),
        class: Class::Thread.name(),
        round_trips: 0,
        cpu: options.cpu,
        items,
    })
}

/// Samples, their total and the longest, over every class.
fn totals(hists: &[ClassHistogram]) -> (u64, u64, u64) {
    hists.iter().fold((0, 0, 0), |(n, sum, longest), h| {
        let max = crate::report::Latency::from_histogram(h).stats.map_or(0, |s| s.max);
        (n + h.count(), sum + h.sum_ns, longest.max(max))
    })
}
