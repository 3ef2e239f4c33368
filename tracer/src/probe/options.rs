//! What the user asked to attach.

use super::filter::Filter;
use crate::snapshot::metrics::MetricSet;

/// Which kind of kernel programs to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProbeKind {
    /// tp_btf where the kernel has BTF, else the classic tracepoint.
    #[default]
    Auto,
    /// BTF tracepoints: task pointers read at BTF offsets. Everything works.
    TpBtf,
    /// Classic tracepoints with a thread -> process map: every metric
    /// (run-queue and off-CPU stamps by thread id); no --cgroup.
    Tracepoint,
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Auto => "auto",
            ProbeKind::TpBtf => "tp_btf",
            ProbeKind::Tracepoint => "tracepoint",
        }
    }
}

/// What the user asked to attach.
#[derive(Clone, Debug, Default)]
pub struct ProbeOptions {
    /// The latencies to measure; counting and classifying always happen.
    pub metrics: MetricSet,
    /// What to trace (everything by default).
    pub filter: Filter,
    /// Count switches per process.
    pub per_process: bool,
    pub probe: ProbeKind,
    /// Off-CPU timestamp slots indexed by thread id; `None`: one per id the
    /// kernel hands out (`pid_max`, capped). Threads beyond them use task
    /// storage; tests shrink it to check that path.
    pub offcpu_slots: Option<u32>,
}
