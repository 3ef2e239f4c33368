//! The plan for this kernel: which probe, which metrics it can give, and
//! the load-time constants and map sizes, decided before anything loads.

use aya::{Ebpf, EbpfLoader};
use tracer_common::{
    bounds::MAX_TID_TIMES,
    filter::CgroupFilter,
    metric::NUM_HISTS,
    names::{global, map},
    tracepoint::TracepointLayout,
    values::PREV_STATE_FROM_ARGUMENT,
};

use super::{
    error::ProbeError,
    filter::Filter,
    maps::page_size,
    options::{ProbeKind, ProbeOptions},
};
use crate::{
    kernel::btf::{Ancestors, BtfError, KernelBtf, TaskOffsets},
    kernel::tracefs,
    snapshot::metrics::{Metric, MetricSet},
};

/// The bare tracepoint that ends a switch in the incoming task (Linux >= 6.16).
pub const SCHED_EXIT_TP: &str = "sched_exit_tp";

/// Why switch cost is unavailable on a kernel before 6.16.
pub(super) fn no_sched_exit_tp() -> String {
    format!("this kernel has no `{SCHED_EXIT_TP}` tracepoint (added in Linux 6.16)")
}

/// Turns the BTF view of the cgroup chain and the wanted cgroup into the
/// kernel programs' global.
fn cgroup_spec(btf: &KernelBtf, filter: &Filter) -> Result<CgroupFilter, ProbeError> {
    let Some(target) = &filter.cgroup else {
        return Ok(CgroupFilter::default());
    };
    let off = btf.cgroup_offsets()?;
    log::info!("cgroup offsets from kernel BTF: {off:?}");
    let (ancestors, ancestor_ids, kn, kn_id) = match off.ancestors {
        Ancestors::Pointers { array, kn, kn_id } => (array, 0, kn, kn_id),
        Ancestors::Ids { array } => (array, 1, 0, 0),
    };
    Ok(CgroupFilter {
        id: target.id,
        level: target.level,
        task_cgroups: off.task_cgroups,
        dfl_cgrp: off.dfl_cgrp,
        cgroup_level: off.level,
        ancestors,
        ancestor_ids,
        kn,
        kn_id,
    })
}

/// What the chosen probe needs, decided before anything is loaded: the
/// metrics this kernel can give and the load-time constants.
pub(super) struct Plan {
    pub(super) probe: ProbeKind,
    pub(super) measured: MetricSet,
    pub(super) unavailable: Vec<(Metric, String)>,
    pub(super) notes: Vec<String>,
    pub(super) offsets: TaskOffsets,
    pub(super) prev_state: u32,
    pub(super) cgroup: CgroupFilter,
    pub(super) layout: TracepointLayout,
    /// Threads to seed the tracepoint probe's thread map with.
    pub(super) tasks: Vec<tracefs::ThreadInfo>,
    /// Kernel BTF for aya (tp_btf only).
    pub(super) aya_btf: Option<aya::Btf>,
}

impl Plan {
    /// Picks the probe (tp_btf needs kernel BTF; `Auto` falls back to the
    /// classic tracepoint without it, and says so) and plans it.
    pub(super) fn new(opts: &ProbeOptions) -> Result<Self, ProbeError> {
        let (kernel_btf, notes) = match (opts.probe, KernelBtf::from_sys()) {
            (ProbeKind::Tracepoint, _) => (None, Vec::new()),
            (_, Ok(btf)) => (Some(btf), Vec::new()),
            (ProbeKind::Auto, Err(e @ BtfError::Missing(_))) => (
                None,
                vec![format!(
                    "{e}; using the classic tracepoint probe instead (--probe tracepoint)"
                )],
            ),
            (_, Err(e)) => return Err(e.into()),
        };
        let mut plan = Self {
            probe: ProbeKind::Tracepoint,
            measured: opts.metrics,
            unavailable: Vec::new(),
            notes,
            offsets: TaskOffsets::default(),
            prev_state: PREV_STATE_FROM_ARGUMENT,
            cgroup: CgroupFilter::default(),
            layout: TracepointLayout::default(),
            tasks: Vec::new(),
            aya_btf: None,
        };
        match &kernel_btf {
            Some(kbtf) => plan.for_tp_btf(kbtf, opts)?,
            None => plan.for_tracepoint(opts)?,
        }
        Ok(plan)
    }

    /// A metric asked for that this kernel cannot give: dropped, with why.
    pub(super) fn drop_metric(&mut self, m: Metric, why: String) {
        if self.measured.contains(m) {
            self.measured = self.measured.without(m);
            self.unavailable.push((m, why));
        }
    }

    fn for_tp_btf(&mut self, kbtf: &KernelBtf, opts: &ProbeOptions) -> Result<(), ProbeError> {
        self.probe = ProbeKind::TpBtf;
        self.offsets = kbtf.task_offsets()?;
        log::info!("task_struct offsets from kernel BTF: {:?}", self.offsets);
        let state = kbtf.prev_state()?;
        log::info!("sched_switch prev_state from {state:?}");
        self.prev_state = state.global();
        if !kbtf.has_tracepoint(SCHED_EXIT_TP) {
            self.drop_metric(Metric::SwitchCost, no_sched_exit_tp());
        }
        self.cgroup = cgroup_spec(kbtf, &opts.filter)?;
        self.aya_btf = Some(aya::Btf::from_sys_fs()?);
        Ok(())
    }

    fn for_tracepoint(&mut self, opts: &ProbeOptions) -> Result<(), ProbeError> {
        self.probe = ProbeKind::Tracepoint;
        if opts.filter.cgroup.is_some() {
            return Err(ProbeError::Unsupported(
                "--cgroup needs the tp_btf probe, which needs kernel BTF".into(),
            ));
        }
        let tracefs = tracefs::mount_point()?;
        let (threads, kthreadd) = tracefs::threads();
        self.layout = tracefs::layout(&tracefs, kthreadd)?;
        log::info!("tracepoint layout from {}: {:?}", tracefs.display(), self.layout);
        self.tasks = threads;
        Ok(())
    }

    /// Whether per-task timestamps are kept (off-CPU or run-queue time).
    pub(super) fn needs_task_times(&self) -> bool {
        self.measured.contains(Metric::Offcpu) || self.measured.contains(Metric::Runq)
    }

    /// Slots of per-thread stamps by thread id: one per id the kernel can
    /// hand out, up to the cap; 0 when no metric needs them.
    pub(super) fn offcpu_slots(&self, opts: &ProbeOptions) -> u32 {
        if !self.needs_task_times() {
            return 0;
        }
        opts.offcpu_slots
            .or_else(crate::kernel::sys::pid_max)
            .map_or(MAX_TID_TIMES, |n| n.clamp(1, MAX_TID_TIMES))
    }

    /// Loads `object` with this plan's constants and map sizes, with
    /// histograms for `cpus` CPUs.
    pub(super) fn load(
        &self,
        opts: &ProbeOptions,
        object: &[u8],
        task_storage: bool,
        cpus: usize,
    ) -> Result<Ebpf, ProbeError> {
        let mut loader = EbpfLoader::new();
        if let Some(btf) = &self.aya_btf {
            loader.btf(btf);
            // The tracepoint probe's thread map is not used: keep it tiny.
            loader.map_max_entries(map::TASKS, 1);
        }
        if !task_storage && !self.needs_task_times() {
            // The LRU hash of per-task timestamps is not used: keep it tiny.
            loader.map_max_entries(map::TASK_TIMES, 1);
        }
        loader.map_max_entries(map::TID_TIMES, self.offcpu_slots(opts).max(1));
        loader.map_max_entries(map::HISTS, (cpus * NUM_HISTS) as u32);
        if !opts.per_process {
            // 16,384 rows (about 3.5 MiB with the names) that are not used.
            loader.map_max_entries(map::PROCS, 1);
            loader.map_max_entries(map::COMMS, 1);
            // A ring buffer's size is a power-of-two multiple of the page size.
            loader.map_max_entries(map::EXITED, page_size());
        }
        let metrics = self.measured.bits();
        let filter = opts.filter.bits();
        let comm = opts.filter.comm.unwrap_or_default();
        let per_process = u8::from(opts.per_process);
        let follow = u8::from(opts.filter.command);
        Ok(loader
            .override_global(global::TASK_PID_OFFSET, &self.offsets.pid, true)
            .override_global(global::TASK_TGID_OFFSET, &self.offsets.tgid, true)
            .override_global(global::TASK_FLAGS_OFFSET, &self.offsets.flags, true)
            .override_global(global::TASK_COMM_OFFSET, &self.offsets.comm, true)
            .override_global(global::TASK_PREV_STATE_OFFSET, &self.prev_state, true)
            .override_global(global::METRICS, &metrics, true)
            .override_global(global::FILTER, &filter, true)
            .override_global(global::FILTER_COMM_NAME, &comm, true)
            .override_global(global::FILTER_CGROUP_SPEC, &self.cgroup, true)
            .override_global(global::TP_LAYOUT, &self.layout, true)
            .override_global(global::PER_PROCESS, &per_process, true)
            .override_global(global::FOLLOW_CHILDREN, &follow, true)
            // TASK_TIMES (task storage) is only used by the kernel programs.
            .allow_unsupported_maps()
            .load(object)?)
    }
}
