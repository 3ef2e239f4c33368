//! Counters and histograms as read from the kernel at one instant, and the
//! difference between two such readings (what happened in between).

mod cost;
pub mod exited;
mod hist;
pub mod metrics;
mod process;

use std::collections::BTreeMap;

use tracer_common::{
    Class,
    class::{NUM_CLASSES, PREEMPTED, VOLUNTARY},
    metric::NUM_METRICS,
    values::SwitchCounts,
};

pub use cost::{OwnCost, ProgramStats};
pub use hist::ClassHistogram;
pub use process::ProcSnapshot;

use crate::{
    snapshot::exited::FOLDED_TGID,
    snapshot::metrics::{Metric, MetricSet},
};

/// Cumulative state of the kernel maps at `taken_ns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// `CLOCK_MONOTONIC` when read.
    pub taken_ns: u64,
    /// Switch counters, one entry per possible CPU.
    pub per_cpu_counts: Vec<SwitchCounts>,
    /// Per metric (index = `Metric as usize`), per class (index =
    /// `Class::index()`); `None` for a metric not measured in this run.
    pub latencies: [Option<Vec<ClassHistogram>>; NUM_METRICS],
    /// Per-process counters by tgid (`--per-process`), exited processes
    /// included (beyond [`crate::snapshot::exited::MAX_EXITED`] of them, summed in the
    /// row of [`FOLDED_TGID`]).
    pub procs: Option<BTreeMap<u32, ProcSnapshot>>,
    /// Per-process counts lost because the kernel map was full.
    pub procs_dropped: u64,
    /// Classic-tracepoint probe: switches whose incoming task's process was
    /// unknown, so they have no class.
    pub unresolved: u64,
    /// With `--self-stats`: what tracer itself has cost so far.
    pub own: Option<OwnCost>,
    /// The kernel's own count of switches, all CPUs (/proc/stat `ctxt`),
    /// read right before the counters; `None` if unreadable.
    pub kernel_switches: Option<u64>,
}

impl Snapshot {
    /// An empty snapshot, as the maps are right after loading.
    pub fn empty(cpus: usize, metrics: MetricSet) -> Self {
        Self {
            taken_ns: 0,
            per_cpu_counts: vec![SwitchCounts::default(); cpus],
            latencies: Metric::ALL.map(|m| {
                metrics
                    .contains(m)
                    .then(|| vec![ClassHistogram::default(); NUM_CLASSES])
            }),
            procs: None,
            procs_dropped: 0,
            unresolved: 0,
            kernel_switches: None,
            own: None,
        }
    }

    /// The histograms of one metric, per class.
    pub fn latency(&self, metric: Metric) -> Option<&[ClassHistogram]> {
        self.latencies[metric as usize].as_deref()
    }

    /// Counters summed over all CPUs.
    pub fn counts(&self) -> SwitchCounts {
        let mut total = SwitchCounts::default();
        for cpu in &self.per_cpu_counts {
            for (t, c) in total.by_class.iter_mut().zip(cpu.by_class.iter()) {
                t[VOLUNTARY] += c[VOLUNTARY];
                t[PREEMPTED] += c[PREEMPTED];
            }
        }
        total
    }

    /// Switches of `class` on one CPU (voluntary + preempted).
    pub fn cpu_switches(&self, cpu: usize, class: Class) -> u64 {
        self.per_cpu_counts
            .get(cpu)
            .map_or(0, |c| c.by_class[class.index()].iter().sum())
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let per_cpu_counts = self
            .per_cpu_counts
            .iter()
            .zip(&earlier.per_cpu_counts)
            .map(|(now, then)| {
                let mut d = SwitchCounts::default();
                for ((d, n), t) in d.by_class.iter_mut().zip(&now.by_class).zip(&then.by_class) {
                    d[VOLUNTARY] = n[VOLUNTARY].saturating_sub(t[VOLUNTARY]);
                    d[PREEMPTED] = n[PREEMPTED].saturating_sub(t[PREEMPTED]);
                }
                d
            })
            .collect();
        let latencies = Metric::ALL.map(|m| match (self.latency(m), earlier.latency(m)) {
            (Some(now), Some(then)) => Some(now.iter().zip(then).map(|(n, t)| n.minus(t)).collect()),
            _ => None,
        });
        let procs = self.procs.as_ref().map(|now| {
            let then = earlier.procs.as_ref();
            let mut delta: BTreeMap<u32, ProcSnapshot> = now
                .iter()
                .map(|(tgid, p)| (*tgid, p.minus(then.and_then(|t| t.get(tgid)))))
                .collect();
            if let (Some(then), Some(folded)) = (then, delta.get_mut(&FOLDED_TGID)) {
                // Rows only shrink (or vanish) when counts move into the
                // folded row of exited processes: those were reported before,
                // as the rows they were in. Take them out of its difference.
                for (tgid, t) in then.iter().filter(|(tgid, _)| **tgid != FOLDED_TGID) {
                    let n = now.get(tgid);
                    for i in 0..NUM_CLASSES {
                        let moved_out = t.out[i].saturating_sub(n.map_or(0, |n| n.out[i]));
                        let moved_in = t.r#in[i].saturating_sub(n.map_or(0, |n| n.r#in[i]));
                        folded.out[i] = folded.out[i].saturating_sub(moved_out);
                        folded.r#in[i] = folded.r#in[i].saturating_sub(moved_in);
                    }
                }
            }
            delta.retain(|_, p| !p.is_zero());
            delta
        });
        Snapshot {
            taken_ns: self.taken_ns,
            per_cpu_counts,
            latencies,
            procs,
            procs_dropped: self.procs_dropped.saturating_sub(earlier.procs_dropped),
            unresolved: self.unresolved.saturating_sub(earlier.unresolved),
            kernel_switches: self
                .kernel_switches
                .zip(earlier.kernel_switches)
                .map(|(now, then)| now.saturating_sub(then)),
            own: match (&self.own, &earlier.own) {
                (Some(now), Some(then)) => Some(now.minus(then)),
                (now, _) => now.clone(),
            },
        }
    }

    /// Records one switch as the kernel programs would: the fake event
    /// source for tests of everything downstream of the maps.
    pub fn record(&mut self, cpu: usize, class: Class, voluntary: bool, samples: &[(Metric, u64)]) {
        let kind = if voluntary { VOLUNTARY } else { PREEMPTED };
        self.per_cpu_counts[cpu].by_class[class.index()][kind] += 1;
        for &(metric, ns) in samples {
            if let Some(hists) = &mut self.latencies[metric as usize] {
                hists[class.index()].record(ns);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_subtracts_counts_and_buckets() {
        let mut a = Snapshot::empty(2, MetricSet::ALL.without(Metric::Runq));
        a.record(0, Class::Thread, true, &[(Metric::SwitchCost, 300)]);
        let mut b = a.clone();
        b.record(1, Class::Thread, false, &[(Metric::SwitchCost, 400), (Metric::Runq, 5)]);
        b.record(
            1,
            Class::Process,
            true,
            &[(Metric::SwitchCost, 500), (Metric::Oncpu, 9000)],
        );
        let d = b.since(&a);
        let c = d.counts();
        assert_eq!(c.by_class[Class::Thread.index()], [0, 1]);
        assert_eq!(c.by_class[Class::Process.index()], [1, 0]);
        assert_eq!(d.cpu_switches(1, Class::Thread), 1);
        assert_eq!(d.cpu_switches(0, Class::Thread), 0);
        let hists = d.latency(Metric::SwitchCost).unwrap();
        assert_eq!(hists[Class::Thread.index()].count(), 1);
        assert_eq!(hists[Class::Thread.index()].sum_ns, 400);
        assert_eq!(hists[Class::Process.index()].sum_ns, 500);
        assert_eq!(d.latency(Metric::Oncpu).unwrap()[Class::Process.index()].sum_ns, 9000);
        // Not measured: no histograms, and samples for it are dropped.
        assert!(d.latency(Metric::Runq).is_none());
    }
}
