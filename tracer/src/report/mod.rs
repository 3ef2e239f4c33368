//! What one report says, computed from the difference of two snapshots, and
//! its renderings: a table with log2 histograms, or JSON.

mod fmt;
pub mod json;
mod latency;
pub mod log2;
mod meta;
mod own_cost;
mod process;
pub mod table;

pub use fmt::{escape_comm, fmt_ns};
pub use latency::{Latency, LatencyStats};
pub use meta::{Meta, meaning};
pub use process::{ProcessReport, Processes};
use tracer_common::{
    Class,
    class::{PREEMPTED, VOLUNTARY},
};

use crate::{snapshot::Snapshot, snapshot::metrics::Metric};

/// One report: everything that happened in `duration_ns`.
#[derive(Clone, Debug)]
pub struct Report {
    pub duration_ns: u64,
    pub meta: Meta,
    /// One entry per class, in [`Class::ALL`] order.
    pub classes: Vec<ClassReport>,
    /// With `--per-process`: the top processes by switches out.
    pub processes: Option<Processes>,
    /// Classic-tracepoint probe: switches left out of every class because
    /// the incoming task's process was unknown.
    pub unresolved: u64,
    /// With `--self-stats`: what tracer cost during the report's span.
    pub own: Option<crate::snapshot::OwnCost>,
    /// Switches the kernel counted in the same span, all CPUs and tasks
    /// (/proc/stat `ctxt`); `None` if unreadable.
    pub kernel_switches: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct ClassReport {
    pub class: Class,
    pub voluntary: u64,
    pub preempted: u64,
    /// Per metric (index = `Metric as usize`); `None` when not measured.
    pub latencies: [Option<Latency>; 4],
}

impl ClassReport {
    pub fn switches(&self) -> u64 {
        self.voluntary + self.preempted
    }

    pub fn latency(&self, metric: Metric) -> Option<&Latency> {
        self.latencies[metric as usize].as_ref()
    }
}

impl Report {
    /// The report for what happened between two snapshots.
    pub fn between(earlier: &Snapshot, now: &Snapshot, meta: Meta) -> Self {
        let delta = now.since(earlier);
        let counts = delta.counts();
        let classes = Class::ALL
            .iter()
            .map(|&class| ClassReport {
                class,
                voluntary: counts.by_class[class.index()][VOLUNTARY],
                preempted: counts.by_class[class.index()][PREEMPTED],
                latencies: Metric::ALL.map(|m| delta.latency(m).map(|h| Latency::from_histogram(&h[class.index()]))),
            })
            .collect();
        let processes = Processes::of(&delta, meta.top);
        Self {
            duration_ns: now.taken_ns.saturating_sub(earlier.taken_ns),
            meta,
            classes,
            processes,
            unresolved: delta.unresolved,
            own: delta.own,
            kernel_switches: delta.kernel_switches,
        }
    }

    /// Sum of all classes.
    pub fn switches(&self) -> u64 {
        self.classes.iter().map(ClassReport::switches).sum()
    }

    pub fn class(&self, class: Class) -> &ClassReport {
        &self.classes[class.index()]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::snapshot::metrics::MetricSet;
    pub(crate) use crate::snapshot::tests::Rng;

    pub(crate) fn meta() -> Meta {
        Meta {
            kernel_release: "6.18.0-test".into(),
            probe: "tp_btf",
            counts_unresolved: false,
            selected: MetricSet::ALL,
            unavailable: Vec::new(),
            top: 20,
            filtered: false,
        }
    }

    #[test]
    fn report_between_snapshots() {
        let a = Snapshot::empty(2, MetricSet::ALL);
        let mut b = a.clone();
        b.taken_ns = 2_000_000_000;
        for _ in 0..3 {
            b.record(0, Class::Thread, true, &[(Metric::SwitchCost, 320)]);
        }
        b.record(1, Class::Process, false, &[(Metric::SwitchCost, 400)]);
        let r = Report::between(&a, &b, meta());
        assert_eq!(r.duration_ns, 2_000_000_000);
        assert_eq!(r.switches(), 4);
        assert_eq!(r.class(Class::Thread).voluntary, 3);
        assert_eq!(r.class(Class::Process).preempted, 1);
        assert_eq!(r.class(Class::Idle).switches(), 0);
        let cost = r.class(Class::Thread).latency(Metric::SwitchCost).unwrap();
        assert_eq!(cost.count, 3);
        assert_eq!(r.class(Class::Thread).latency(Metric::Runq).unwrap().count, 0);
    }
}
