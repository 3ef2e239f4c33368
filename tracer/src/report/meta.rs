//! Where a report's numbers came from, and what each metric measures.

use crate::snapshot::metrics::{Metric, MetricSet};

/// Where the numbers came from, for the report header.
#[derive(Clone, Debug)]
pub struct Meta {
    pub kernel_release: String,
    /// The probe's name (`tp_btf`, `tracepoint`).
    pub probe: &'static str,
    /// The probe can leave switches out of every class (the classic
    /// tracepoint: the incoming task's process may be unknown), so reports
    /// say how many it did.
    pub counts_unresolved: bool,
    /// The metrics the user asked for (the others are left out of reports).
    pub selected: MetricSet,
    /// Metrics asked for that this run cannot give, and why.
    pub unavailable: Vec<(Metric, String)>,
    /// How many processes a per-process breakdown shows (`--top`).
    pub top: usize,
    /// Some filter is on: tracer's total is part of the host's.
    pub filtered: bool,
}

impl Meta {
    pub fn why_unavailable(&self, metric: Metric) -> Option<&str> {
        self.unavailable
            .iter()
            .find(|(m, _)| *m == metric)
            .map(|(_, why)| why.as_str())
    }
}

/// What each metric measures, for reports and help.
pub fn meaning(metric: Metric) -> &'static str {
    match metric {
        Metric::SwitchCost => {
            "from sched_switch (prev leaving) until the incoming task runs again on the same CPU \
             (sched_exit_tp); includes the part of the tracer's own probes that runs between their timestamps"
        }
        Metric::Runq => {
            "from the moment the task became runnable (woken, or switched out still runnable) until switched in: \
             waiting for a CPU"
        }
        Metric::Offcpu => "from the task's last switch-out until its switch-in: away from the CPU, blocked or waiting",
        Metric::Oncpu => "from the task's switch-in until its switch-out: the slice it ran",
    }
}
