//! What a check found: each comparison, per workload, per probe, overall.

use std::collections::BTreeMap;

use serde::Serialize;

use super::render::show;

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

impl Item {
    pub(super) fn new(name: String, tracer: Option<u64>, kernel: Option<u64>, allowed: String, pass: bool) -> Self {
        Self {
            name,
            tracer,
            kernel,
            allowed,
            pass,
        }
    }
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
