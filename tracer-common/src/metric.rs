//! The latencies measured per class; their exact definitions are in
//! `docs/latencies.md`.

use crate::class::NUM_CLASSES;

/// A latency measured per class.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// sched_switch -> the incoming task resumes (`sched_exit_tp`) on the same CPU.
    SwitchCost = 0,
    /// Wakeup (or preemption) of `next` -> `next` switched in.
    Runq = 1,
    /// `next`'s last switch-out -> its switch-in.
    Offcpu = 2,
    /// `prev`'s switch-in -> its switch-out.
    Oncpu = 3,
}

/// Number of metrics.
pub const NUM_METRICS: usize = 4;
/// Histograms per CPU: one per metric and class.
pub const NUM_HISTS: usize = NUM_METRICS * NUM_CLASSES;

impl Metric {
    pub const ALL: [Metric; NUM_METRICS] = [Metric::SwitchCost, Metric::Runq, Metric::Offcpu, Metric::Oncpu];

    /// The JSON key.
    pub const fn key(self) -> &'static str {
        match self {
            Metric::SwitchCost => "switch_cost_ns",
            Metric::Runq => "runq_latency_ns",
            Metric::Offcpu => "offcpu_ns",
            Metric::Oncpu => "oncpu_ns",
        }
    }

    /// The name used by `--metrics`.
    pub const fn short(self) -> &'static str {
        match self {
            Metric::SwitchCost => "switch",
            Metric::Runq => "runq",
            Metric::Offcpu => "offcpu",
            Metric::Oncpu => "oncpu",
        }
    }

    /// Bit of this metric in the [`crate::names::global::METRICS`] mask.
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// Index of this metric's histogram for `class` among a CPU's [`NUM_HISTS`]
    /// in [`crate::names::map::HISTS`].
    pub const fn hist_index(self, class: usize) -> u32 {
        (self as usize * NUM_CLASSES + class) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_indices_are_distinct() {
        let mut seen = [false; NUM_HISTS];
        for m in Metric::ALL {
            for c in 0..NUM_CLASSES {
                let i = m.hist_index(c) as usize;
                assert!(!seen[i]);
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }
}
