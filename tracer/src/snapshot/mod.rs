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

pub use cost::{MapMemory, OwnCost, ProgramStats};
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
pub(crate) mod tests {
    use super::*;
    use crate::snapshot::exited::ExitedProcs;

    /// A deterministic pseudo-random sequence (xorshift), so failures repeat.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// Log-uniform in [lo, hi).
        pub(crate) fn log_uniform(&mut self, lo: f64, hi: f64) -> u64 {
            let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
            (lo * (hi / lo).powf(u)) as u64
        }
    }

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

    /// Random churn through a small table, with snapshots in between: every
    /// interval's per-process differences add up to exactly what happened
    /// in it, whatever moved into the folded row meanwhile.
    #[test]
    fn intervals_stay_exact_while_rows_are_folded() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut table = ExitedProcs::with_capacity(8);
        let mut live: BTreeMap<u32, ProcSnapshot> = BTreeMap::new();
        let mut next_tgid = 1u32;
        let snapshot = |table: &ExitedProcs, live: &BTreeMap<u32, ProcSnapshot>| {
            let mut s = Snapshot::empty(1, MetricSet::NONE);
            s.procs = Some(table.merged_with(live.clone()));
            s
        };
        let total = |procs: &BTreeMap<u32, ProcSnapshot>| -> u64 {
            procs.values().map(|p| p.out.iter().chain(&p.r#in).sum::<u64>()).sum()
        };
        let mut earlier = snapshot(&table, &live);
        let mut happened = 0;
        for step in 0..2_000 {
            match rng.next() % 4 {
                // A new process, or more switches for a live one.
                0 | 1 => happened += more_switches(&mut rng, &mut live, &mut next_tgid),
                // A process exits and is retired.
                2 => {
                    if let Some(&key) = live.keys().nth((rng.next() as usize) % live.len().max(1)) {
                        let p = live.remove(&key).unwrap();
                        table.add(key, p);
                    }
                }
                // A report.
                _ => {
                    let now = snapshot(&table, &live);
                    let delta = now.since(&earlier);
                    let seen = total(delta.procs.as_ref().unwrap());
                    assert_eq!(seen, happened, "step {step}");
                    assert!(
                        delta
                            .procs
                            .as_ref()
                            .unwrap()
                            .values()
                            .all(|p| p.out.iter().chain(&p.r#in).any(|&n| n > 0))
                    );
                    happened = 0;
                    earlier = now;
                }
            }
        }
        assert!(
            table.folded_count() > 50,
            "the table did not overflow: {}",
            table.folded_count()
        );
        // And from the start: everything, once.
        let all = snapshot(&table, &live);
        let first = {
            let mut s = Snapshot::empty(1, MetricSet::NONE);
            s.procs = Some(BTreeMap::new());
            s
        };
        assert_eq!(
            total(all.since(&first).procs.as_ref().unwrap()),
            total(all.procs.as_ref().unwrap())
        );
    }

    /// A new process, or more switches for a live one; now and then a tgid
    /// comes back (reuse). Returns how many switches that added.
    fn more_switches(rng: &mut Rng, live: &mut BTreeMap<u32, ProcSnapshot>, next_tgid: &mut u32) -> u64 {
        let n = rng.next() % 20;
        if live.is_empty() || rng.next().is_multiple_of(3) {
            let tgid = if rng.next().is_multiple_of(10) {
                1 + (rng.next() % 40) as u32
            } else {
                *next_tgid
            };
            *next_tgid += 1;
            live.entry(tgid).or_default().out[Class::Thread.index()] += n;
            live.entry(tgid).or_default().r#in[Class::Kernel.index()] += 1;
        } else {
            let key = *live.keys().nth((rng.next() as usize) % live.len()).unwrap();
            let p = live.get_mut(&key).unwrap();
            p.out[Class::Process.index()] += n;
            p.r#in[Class::Idle.index()] += 1;
        }
        n + 1
    }
}
