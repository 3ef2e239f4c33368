//! Loads the embedded kernel programs, configures them for the running
//! kernel, attaches them, and reads their maps.

pub mod filter;

use std::collections::BTreeMap;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues, RingBuf},
    programs::{BtfTracePoint, RawTracePoint, TracePoint},
};
use aya_log::EbpfLogger;
use tracer_common::{
    class::NUM_CLASSES,
    hist::Histogram,
    maps::{
        COMMS_MAP, CPU_MAP, CPUS_MAP, CgroupFilter, CpuState, EXITED_MAP, FILTER_TGID, GLOBAL_CGROUP, GLOBAL_COMM,
        GLOBAL_COMM_OFFSET, GLOBAL_FILTER, GLOBAL_FLAGS_OFFSET, GLOBAL_FOLLOW_CHILDREN, GLOBAL_METRICS,
        GLOBAL_PER_PROCESS, GLOBAL_PID_OFFSET, GLOBAL_PREV_STATE_OFFSET, GLOBAL_TGID_OFFSET, GLOBAL_TP_LAYOUT,
        HISTS_MAP, MAX_TID_TIMES, PREV_STATE_FROM_ARGUMENT, PROCS_MAP, PROG_RAW_SCHED_EXIT, PROG_SCHED_EXIT,
        PROG_SCHED_PROCESS_EXEC, PROG_SCHED_PROCESS_FORK, PROG_SCHED_PROCESS_FREE, PROG_SCHED_SWITCH,
        PROG_SCHED_WAKEUP_NEW, PROG_SCHED_WAKING, PROG_TP_PROCESS_EXEC, PROG_TP_PROCESS_FREE, PROG_TP_SCHED_SWITCH,
        PROG_TP_SCHED_WAKEUP_NEW, PROG_TP_SCHED_WAKING, PROG_TP_TASK_NEWTASK, ProcCounts, TASK_KTHREAD_BIT,
        TASK_TIMES_MAP, TASKS_MAP, TGIDS_MAP, TID_TIMES_MAP, TIDS_MAP, TracepointLayout,
    },
};

use crate::{
    kernel::btf::{Ancestors, BtfError, KernelBtf, TaskOffsets},
    kernel::privilege::{self, PrivilegeError},
    kernel::tracefs,
    probe::filter::Filter,
    snapshot::exited::ExitedProcs,
    snapshot::metrics::{Metric, MetricSet},
    snapshot::{ClassHistogram, ProcSnapshot, Snapshot},
};

/// The kernel programs, built by `build.rs` for the BPF target.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));
/// The same programs with per-task timestamps in an LRU hash instead of task
/// storage, for kernels before 5.11.
static EBPF_OBJECT_LRU: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-lru"));

/// The kernel programs for the running kernel, and whether they keep
/// per-task timestamps in task storage (else in an LRU hash by thread id,
/// which the classic-tracepoint probe needs: it has no task pointers).
fn ebpf_object(probe: ProbeKind) -> (&'static [u8], bool) {
    if probe == ProbeKind::Tracepoint {
        return (EBPF_OBJECT_LRU, false);
    }
    match aya::sys::is_map_supported(aya::maps::MapType::TaskStorage) {
        Ok(true) => (EBPF_OBJECT, true),
        Ok(false) => {
            log::info!("no task storage maps (Linux < 5.11): per-task timestamps in an LRU hash");
            (EBPF_OBJECT_LRU, false)
        }
        Err(e) => {
            log::warn!("cannot tell whether this kernel has task storage maps ({e}); assuming it does");
            (EBPF_OBJECT, true)
        }
    }
}

/// Loads and attaches only the empty `floor_switch` program on sched_switch
/// (and `floor_exit` on sched_exit_tp when `with_exit`), for overhead
/// benchmarks; detached when the returned value drops.
pub fn attach_floor(with_exit: bool) -> Result<Ebpf, ProbeError> {
    privilege::check()?;
    let btf = aya::Btf::from_sys_fs()?;
    let mut ebpf = EbpfLoader::new()
        .btf(&btf)
        .allow_unsupported_maps()
        .load(ebpf_object(ProbeKind::TpBtf).0)?;
    attach_tp_btf(&mut ebpf, tracer_common::maps::PROG_FLOOR_SWITCH, "sched_switch", &btf)?;
    if with_exit {
        attach_tp_btf(&mut ebpf, tracer_common::maps::PROG_FLOOR_EXIT, SCHED_EXIT_TP, &btf)?;
    }
    Ok(ebpf)
}

/// Why switch cost is unavailable on a kernel before 6.16.
fn no_sched_exit_tp() -> String {
    format!("this kernel has no `{SCHED_EXIT_TP}` tracepoint (added in Linux 6.16)")
}

/// `BPF_NOEXIST`: insert only if the key is not there yet.
const BPF_NOEXIST: u64 = 1;

/// The bare tracepoint that ends a switch in the incoming task (Linux >= 6.16).
pub const SCHED_EXIT_TP: &str = "sched_exit_tp";

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Privilege(#[from] PrivilegeError),
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error("cannot parse kernel BTF for loading: {0}")]
    AyaBtf(#[from] aya::BtfError),
    #[error("cannot load the kernel programs: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("cannot {action} program `{program}`: {source}")]
    Program {
        action: &'static str,
        program: &'static str,
        source: aya::programs::ProgramError,
    },
    #[error(transparent)]
    Tracefs(#[from] crate::kernel::tracefs::TracefsError),
    #[error("{0}")]
    Unsupported(String),
    #[error("kernel object has no {0}")]
    Missing(String),
    #[error("cannot use map {map}: {source}")]
    Map {
        map: &'static str,
        source: aya::maps::MapError,
    },
}

/// Which kind of kernel programs to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProbeKind {
    /// tp_btf where the kernel has BTF, else the classic tracepoint.
    #[default]
    Auto,
    /// BTF tracepoints: task pointers read at BTF offsets. Everything works.
    TpBtf,
    /// Classic tracepoints with a thread -> process map: classification,
    /// counts, switch cost and on-CPU time; no run-queue or off-CPU time and
    /// no --cgroup.
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

/// `--per-process`: the kernel's tables of live processes, the queue of
/// those gone, and the exited processes already taken out of the tables.
struct ProcMaps {
    /// Switch counters by tgid.
    counts: PerCpuHashMap<MapData, u32, ProcCounts>,
    /// Names by tgid.
    comms: HashMap<MapData, u32, [u8; 16]>,
    /// Tgids of processes gone, to retire.
    exits: RingBuf<MapData>,
    exited: ExitedProcs,
    /// Tgids read from `exits` in one drain (kept to reuse its allocation).
    queued: Vec<u32>,
    /// `procs_unretired` as last warned about.
    unretired: u64,
}

impl ProcMaps {
    fn take(ebpf: &mut Ebpf) -> Result<Self, ProbeError> {
        Ok(Self {
            counts: take_map(ebpf, PROCS_MAP)?,
            comms: take_map(ebpf, COMMS_MAP)?,
            exits: take_map(ebpf, EXITED_MAP)?,
            exited: ExitedProcs::default(),
            queued: Vec::new(),
            unretired: 0,
        })
    }

    /// Moves the processes the kernel queued as gone from its tables into
    /// `exited`; returns how many.
    ///
    /// Between the free that queued a tgid and this drain, the tgid can be
    /// given to a new process (the pid space has wrapped around): its
    /// switches until then land in the old row and are kept as the old
    /// process's (and a rename by exec is lost), its later ones get a new
    /// row; nothing is lost or counted twice. A drain every second
    /// ([`RETIRE_PERIOD`]) makes that need a full wrap of the pid space in
    /// under a second.
    fn retire(&mut self) -> usize {
        self.queued.clear();
        while let Some(item) = self.exits.next() {
            if let Some(bytes) = item.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
                self.queued.push(u32::from_ne_bytes(bytes));
            }
        }
        let mut retired = 0;
        for &tgid in &self.queued {
            // Not there: a second record for a row already retired (its tgid
            // reused and freed again before this drain).
            let Ok(values) = self.counts.get(&tgid, 0) else {
                continue;
            };
            // Deleted before it is kept: if deleting failed, the row stays
            // live (still reported, once) instead of being counted twice.
            if self.counts.remove(&tgid).is_err() {
                continue;
            }
            let p = self.row(tgid, &values);
            let _ = self.comms.remove(&tgid);
            self.exited.add(tgid, p);
            retired += 1;
        }
        retired
    }

    /// The live processes from the kernel's tables, and the exited ones.
    fn read(&self) -> BTreeMap<u32, ProcSnapshot> {
        let mut procs = BTreeMap::new();
        for entry in self.counts.iter() {
            // An entry can vanish between listing and reading: skip it.
            let Ok((tgid, values)) = entry else { continue };
            procs.insert(tgid, self.row(tgid, &values));
        }
        self.exited.merged_with(procs)
    }

    /// One process's row: its per-CPU counters summed, and its name.
    fn row(&self, tgid: u32, values: &PerCpuValues<ProcCounts>) -> ProcSnapshot {
        let mut p = ProcSnapshot::sum_of(values.iter());
        p.comm = self.comms.get(&tgid, 0).unwrap_or_default();
        p
    }
}

/// How often the session retires exited processes from the kernel's
/// per-process tables (and every snapshot does too).
pub const RETIRE_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Loaded and attached programs. Dropping this detaches everything.
pub struct Probes {
    // Field order is drop order: maps and logger first, programs last.
    cpu_map: PerCpuArray<MapData, CpuState>,
    hists: PerCpuArray<MapData, Histogram>,
    tgids: HashMap<MapData, u32, u8>,
    /// The other filter maps, held open with the programs that use them.
    _filter_maps: (HashMap<MapData, u32, u8>, Array<MapData, u8>),
    procs: Option<ProcMaps>,
    logger: Option<EbpfLogger<&'static dyn log::Log>>,
    /// Keeps the kernel's per-program run-time statistics on (`--self-stats`).
    stats: Option<std::os::fd::OwnedFd>,
    ebpf: Ebpf,
    /// The metrics measured in this run.
    pub measured: MetricSet,
    /// Metrics asked for that this kernel cannot give, with the reason.
    pub unavailable: Vec<(Metric, String)>,
    /// Things the user should know about this run (e.g. a fallback), once.
    pub notes: Vec<String>,
    /// The probe in use: `TpBtf` or `Tracepoint`, never `Auto`.
    pub probe: ProbeKind,
    /// Per-task timestamps are in task storage (else in an LRU hash by
    /// thread id, on kernels before 5.11).
    pub task_storage: bool,
    /// Off-CPU and run-queue stamps are kept by thread id for ids below
    /// this (0 when neither is measured); above, with the task (task
    /// storage, or the LRU hash).
    pub offcpu_slots: u32,
    /// The `task_struct` offsets loaded with, from kernel BTF (tp_btf only).
    pub task_offsets: Option<TaskOffsets>,
    /// Some filter is on: not every switch is traced.
    pub filtered: bool,
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
struct Plan {
    probe: ProbeKind,
    measured: MetricSet,
    unavailable: Vec<(Metric, String)>,
    notes: Vec<String>,
    offsets: TaskOffsets,
    prev_state: u32,
    cgroup: CgroupFilter,
    layout: TracepointLayout,
    /// Threads to seed the tracepoint probe's thread map with.
    tasks: Vec<tracefs::ThreadInfo>,
    /// Kernel BTF for aya (tp_btf only).
    aya_btf: Option<aya::Btf>,
}

impl Plan {
    /// Picks the probe (tp_btf needs kernel BTF; `Auto` falls back to the
    /// classic tracepoint without it, and says so) and plans it.
    fn new(opts: &ProbeOptions) -> Result<Self, ProbeError> {
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
    fn drop_metric(&mut self, m: Metric, why: String) {
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
    fn needs_task_times(&self) -> bool {
        self.measured.contains(Metric::Offcpu) || self.measured.contains(Metric::Runq)
    }

    /// Slots of per-thread stamps by thread id: one per id the kernel can
    /// hand out, up to the cap; 0 when no metric needs them.
    fn offcpu_slots(&self, opts: &ProbeOptions) -> u32 {
        if !self.needs_task_times() {
            return 0;
        }
        opts.offcpu_slots
            .or_else(crate::kernel::sys::pid_max)
            .map_or(MAX_TID_TIMES, |n| n.clamp(1, MAX_TID_TIMES))
    }

    /// Loads `object` with this plan's constants and map sizes.
    fn load(&self, opts: &ProbeOptions, object: &[u8], task_storage: bool) -> Result<Ebpf, ProbeError> {
        let mut loader = EbpfLoader::new();
        if let Some(btf) = &self.aya_btf {
            loader.btf(btf);
            // The tracepoint probe's thread map is not used: keep it tiny.
            loader.map_max_entries(TASKS_MAP, 1);
        }
        if !task_storage && !self.needs_task_times() {
            // The LRU hash of per-task timestamps is not used: keep it tiny.
            loader.map_max_entries(TASK_TIMES_MAP, 1);
        }
        loader.map_max_entries(TID_TIMES_MAP, self.offcpu_slots(opts).max(1));
        if !opts.per_process {
            // Per-CPU rows for 16,384 processes add up on a many-CPU host.
            loader.map_max_entries(PROCS_MAP, 1);
            loader.map_max_entries(COMMS_MAP, 1);
            // A ring buffer's size is a power-of-two multiple of the page size.
            loader.map_max_entries(EXITED_MAP, page_size());
        }
        let metrics = self.measured.bits();
        let filter = opts.filter.bits();
        let comm = opts.filter.comm.unwrap_or_default();
        let per_process = u8::from(opts.per_process);
        let follow = u8::from(opts.filter.command);
        Ok(loader
            .override_global(GLOBAL_PID_OFFSET, &self.offsets.pid, true)
            .override_global(GLOBAL_TGID_OFFSET, &self.offsets.tgid, true)
            .override_global(GLOBAL_FLAGS_OFFSET, &self.offsets.flags, true)
            .override_global(GLOBAL_COMM_OFFSET, &self.offsets.comm, true)
            .override_global(GLOBAL_PREV_STATE_OFFSET, &self.prev_state, true)
            .override_global(GLOBAL_METRICS, &metrics, true)
            .override_global(GLOBAL_FILTER, &filter, true)
            .override_global(GLOBAL_COMM, &comm, true)
            .override_global(GLOBAL_CGROUP, &self.cgroup, true)
            .override_global(GLOBAL_TP_LAYOUT, &self.layout, true)
            .override_global(GLOBAL_PER_PROCESS, &per_process, true)
            .override_global(GLOBAL_FOLLOW_CHILDREN, &follow, true)
            // TASK_TIMES (task storage) is only used by the kernel programs.
            .allow_unsupported_maps()
            .load(object)?)
    }

    /// Attaches the tp_btf programs; the ones that feed sched_switch's state
    /// first, sched_switch last.
    fn attach_tp_btf(
        &self,
        ebpf: &mut Ebpf,
        btf: &aya::Btf,
        opts: &ProbeOptions,
        task_storage: bool,
    ) -> Result<(), ProbeError> {
        let by_tgid = opts.filter.bits() & FILTER_TGID != 0;
        if by_tgid || opts.per_process || (!task_storage && self.needs_task_times()) {
            // Forget processes when they are freed, so a reused pid is not
            // traced, queue their per-process rows for retirement, and forget
            // tasks' timestamps where they are not in task storage.
            attach_tp_btf(ebpf, PROG_SCHED_PROCESS_FREE, "sched_process_free", btf)?;
        }
        if by_tgid && opts.filter.command {
            // Follow children of traced processes for `-- COMMAND`.
            attach_tp_btf(ebpf, PROG_SCHED_PROCESS_FORK, "sched_process_fork", btf)?;
        }
        if opts.per_process {
            attach_tp_btf(ebpf, PROG_SCHED_PROCESS_EXEC, "sched_process_exec", btf)?;
        }
        if self.needs_task_times() {
            // New threads start with clean stamps (and wait from there).
            attach_tp_btf(ebpf, PROG_SCHED_WAKEUP_NEW, "sched_wakeup_new", btf)?;
        }
        if self.measured.contains(Metric::Runq) {
            attach_tp_btf(ebpf, PROG_SCHED_WAKING, "sched_waking", btf)?;
        }
        if self.measured.contains(Metric::SwitchCost) {
            attach_tp_btf(ebpf, PROG_SCHED_EXIT, SCHED_EXIT_TP, btf)?;
        }
        attach_tp_btf(ebpf, PROG_SCHED_SWITCH, "sched_switch", btf)
    }

    /// Attaches the classic-tracepoint programs. Every thread is known before
    /// the first switch is seen: new ones from task_newtask (attached first),
    /// existing ones seeded from /proc.
    fn attach_tracepoint(&mut self, ebpf: &mut Ebpf, opts: &ProbeOptions) -> Result<(), ProbeError> {
        attach_tracepoint(ebpf, PROG_TP_PROCESS_FREE, "sched", "sched_process_free")?;
        if opts.per_process {
            attach_tracepoint(ebpf, PROG_TP_PROCESS_EXEC, "sched", "sched_process_exec")?;
        }
        attach_tracepoint(ebpf, PROG_TP_TASK_NEWTASK, "task", "task_newtask")?;
        let mut map: HashMap<MapData, u32, u32> = take_map(ebpf, TASKS_MAP)?;
        for t in &self.tasks {
            let value = if t.kthread { t.tgid | TASK_KTHREAD_BIT } else { t.tgid };
            // A thread that exited meanwhile or a full map: the switch
            // program fills in what it meets (or counts it unresolved).
            let _ = map.insert(&t.tid, &value, BPF_NOEXIST);
        }
        log::info!("seeded {} threads from /proc", self.tasks.len());
        if self.needs_task_times() {
            attach_tracepoint(ebpf, PROG_TP_SCHED_WAKEUP_NEW, "sched", "sched_wakeup_new")?;
        }
        if self.measured.contains(Metric::Runq) {
            attach_tracepoint(ebpf, PROG_TP_SCHED_WAKING, "sched", "sched_waking")?;
        }
        if self.measured.contains(Metric::SwitchCost) && attach_raw(ebpf, PROG_RAW_SCHED_EXIT, SCHED_EXIT_TP).is_err() {
            self.drop_metric(Metric::SwitchCost, no_sched_exit_tp());
        }
        attach_tracepoint(ebpf, PROG_TP_SCHED_SWITCH, "sched", "sched_switch")
    }
}

/// The filter maps, filled before anything attaches. Taken maps stay open
/// until the programs that use them are loaded: these live with `Probes`.
struct FilterMaps {
    tgids: HashMap<MapData, u32, u8>,
    _tids: HashMap<MapData, u32, u8>,
    _cpus: Array<MapData, u8>,
}

impl FilterMaps {
    fn fill(ebpf: &mut Ebpf, filter: &Filter) -> Result<Self, ProbeError> {
        let mut tgids: HashMap<MapData, u32, u8> = take_map(ebpf, TGIDS_MAP)?;
        for tgid in &filter.tgids {
            tgids
                .insert(tgid, &1, 0)
                .map_err(|source| ProbeError::Map { map: TGIDS_MAP, source })?;
        }
        let mut tids: HashMap<MapData, u32, u8> = take_map(ebpf, TIDS_MAP)?;
        for tid in &filter.tids {
            tids.insert(tid, &1, 0)
                .map_err(|source| ProbeError::Map { map: TIDS_MAP, source })?;
        }
        let mut cpus: Array<MapData, u8> = take_map(ebpf, CPUS_MAP)?;
        for &cpu in filter.cpus.iter().flatten() {
            cpus.set(cpu as u32, &1, 0)
                .map_err(|source| ProbeError::Map { map: CPUS_MAP, source })?;
        }
        Ok(Self {
            tgids,
            _tids: tids,
            _cpus: cpus,
        })
    }
}

impl Probes {
    /// Checks privileges, picks the probe, loads, attaches.
    pub fn attach(opts: ProbeOptions) -> Result<Self, ProbeError> {
        privilege::check()?;
        let mut plan = Plan::new(&opts)?;
        let (object, task_storage) = ebpf_object(plan.probe);
        let mut ebpf = plan.load(&opts, object, task_storage)?;
        let logger = match EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(e) => {
                log::warn!("kernel-side diagnostics unavailable: {e}");
                None
            }
        };
        let filters = FilterMaps::fill(&mut ebpf, &opts.filter)?;
        let offcpu_slots = plan.offcpu_slots(&opts);
        match plan.aya_btf.take() {
            Some(btf) => plan.attach_tp_btf(&mut ebpf, &btf, &opts, task_storage)?,
            None => plan.attach_tracepoint(&mut ebpf, &opts)?,
        }
        Ok(Self {
            cpu_map: take_map(&mut ebpf, CPU_MAP)?,
            hists: take_map(&mut ebpf, HISTS_MAP)?,
            tgids: filters.tgids,
            _filter_maps: (filters._tids, filters._cpus),
            procs: if opts.per_process {
                Some(ProcMaps::take(&mut ebpf)?)
            } else {
                None
            },
            logger,
            stats: None,
            ebpf,
            measured: plan.measured,
            unavailable: plan.unavailable,
            notes: plan.notes,
            probe: plan.probe,
            task_storage,
            offcpu_slots,
            task_offsets: (plan.probe == ProbeKind::TpBtf).then_some(plan.offsets),
            filtered: opts.filter.bits() != 0,
        })
    }

    /// Turns on the kernel's run-time statistics of BPF programs
    /// (`BPF_ENABLE_STATS`) for as long as these probes live.
    pub fn enable_stats(&mut self) -> Result<(), ProbeError> {
        let fd = aya::sys::enable_stats(aya::sys::Stats::RunTime)
            .map_err(|e| ProbeError::Unsupported(format!("cannot turn on BPF run-time statistics: {e}")))?;
        self.stats = Some(fd);
        Ok(())
    }

    /// Runs and run time so far of each attached program (zeros unless
    /// statistics are on).
    pub fn program_stats(&self) -> Vec<crate::snapshot::ProgramStats> {
        self.ebpf
            .programs()
            .filter_map(|(name, prog)| {
                let info = prog.info().ok()?;
                Some(crate::snapshot::ProgramStats {
                    name: name.to_owned(),
                    runs: info.run_count(),
                    run_ns: info.run_time().as_nanos() as u64,
                })
            })
            .collect()
    }

    /// Starts tracing a process (with `-- COMMAND`: the command, before it runs).
    pub fn add_process(&mut self, tgid: u32) -> Result<(), ProbeError> {
        self.tgids
            .insert(&tgid, &1, 0)
            .map_err(|source| ProbeError::Map { map: TGIDS_MAP, source })
    }

    /// Why each metric in `asked` is missing from this run, if it is.
    pub fn missing(&self, asked: MetricSet) -> Vec<(Metric, String)> {
        let mut out: Vec<(Metric, String)> = asked
            .iter()
            .filter(|&m| !self.measured.contains(m))
            .map(|m| {
                let why = self
                    .unavailable
                    .iter()
                    .find(|(u, _)| *u == m)
                    .map_or_else(|| "not selected".to_owned(), |(_, why)| why.clone());
                (m, why)
            })
            .collect();
        out.sort_by_key(|(m, _)| *m);
        out
    }

    /// The kernel-side log ring buffer, to be polled for diagnostics.
    pub fn take_logger(&mut self) -> Option<EbpfLogger<&'static dyn log::Log>> {
        self.logger.take()
    }

    /// `--per-process`: moves the processes that are gone out of the
    /// kernel's tables into the table of exited processes (snapshots still
    /// report them), so that the kernel's tables do not fill up and a
    /// snapshot reads live processes only. Returns how many; 0 without
    /// `--per-process`. Run every [`RETIRE_PERIOD`]; each snapshot does too.
    pub fn retire_exited(&mut self) -> usize {
        self.procs.as_mut().map_or(0, ProcMaps::retire)
    }

    /// Reads all counters and histograms now (cumulative since attach).
    pub fn snapshot(&mut self) -> Result<Snapshot, ProbeError> {
        self.snapshot_cpus(None)
    }

    /// Like [`Probes::snapshot`], with the histograms merged only over `cpus`
    /// (all CPUs when `None`). Counters are always kept per CPU.
    pub fn snapshot_cpus(&mut self, cpus: Option<&[usize]>) -> Result<Snapshot, ProbeError> {
        self.read(cpus, true)
    }

    /// Like [`Probes::snapshot`] without the per-process rows (`procs` is
    /// `None`), for readers that do not show them.
    pub fn snapshot_totals(&mut self) -> Result<Snapshot, ProbeError> {
        self.read(None, false)
    }

    fn read(&mut self, cpus: Option<&[usize]>, with_procs: bool) -> Result<Snapshot, ProbeError> {
        self.retire_exited();
        let taken_ns = crate::kernel::sys::monotonic_ns();
        // Right before the counters, so that the two are read as close
        // together as they can be (the difference is read skew only).
        let kernel_switches = match crate::kernel::procstat::context_switches() {
            Ok(n) => Some(n),
            Err(e) => {
                log::warn!("{e}");
                None
            }
        };
        let per_cpu = self
            .cpu_map
            .get(&0, 0)
            .map_err(|source| ProbeError::Map { map: CPU_MAP, source })?;
        let per_cpu_counts = per_cpu.iter().map(|s| s.counts).collect();
        let procs_dropped = per_cpu.iter().map(|s| s.procs_dropped).sum();
        let unresolved = per_cpu.iter().map(|s| s.unresolved).sum();
        let procs = self.procs.as_mut().filter(|_| with_procs).map(|p| {
            let unretired = per_cpu.iter().map(|s| s.procs_unretired).sum();
            if unretired > p.unretired {
                log::warn!(
                    "{unretired} processes that are gone stay in the kernel's per-process table: \
                     the queue of processes to retire was full"
                );
                p.unretired = unretired;
            }
            p.read()
        });
        let mut latencies: [Option<Vec<ClassHistogram>>; 4] = Default::default();
        for metric in self.measured.iter() {
            let mut hists = Vec::with_capacity(NUM_CLASSES);
            for class in 0..NUM_CLASSES {
                let values = self
                    .hists
                    .get(&metric.hist_index(class), 0)
                    .map_err(|source| ProbeError::Map { map: HISTS_MAP, source })?;
                let wanted = values
                    .iter()
                    .enumerate()
                    .filter(|(cpu, _)| cpus.is_none_or(|cpus| cpus.contains(cpu)))
                    .map(|(_, h)| h);
                hists.push(ClassHistogram::sum_of(wanted));
            }
            latencies[metric as usize] = Some(hists);
        }
        Ok(Snapshot {
            taken_ns,
            per_cpu_counts,
            latencies,
            procs,
            procs_dropped,
            unresolved,
            kernel_switches,
            own: self
                .stats
                .is_some()
                .then(|| crate::snapshot::OwnCost::now(self.program_stats())),
        })
    }
}

/// The program named `program`, as its concrete type.
fn program<'a, P>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut P, ProbeError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(program)
        .ok_or_else(|| ProbeError::Missing(format!("program `{program}`")))?
        .try_into()
        .map_err(|source| ProbeError::Program {
            action: "find",
            program,
            source,
        })
}

/// Names the program and the step in a program error.
fn step<T>(
    program: &'static str,
    action: &'static str,
    result: Result<T, aya::programs::ProgramError>,
) -> Result<T, ProbeError> {
    result.map_err(|source| ProbeError::Program {
        action,
        program,
        source,
    })
}

fn attach_tp_btf(ebpf: &mut Ebpf, name: &'static str, tracepoint: &str, btf: &aya::Btf) -> Result<(), ProbeError> {
    let prog: &mut BtfTracePoint = program(ebpf, name)?;
    step(name, "load", prog.load(tracepoint, btf))?;
    step(name, "attach", prog.attach())?;
    log::info!("attached `{name}` to tp_btf/{tracepoint}");
    Ok(())
}

fn attach_tracepoint(ebpf: &mut Ebpf, name: &'static str, category: &str, event: &str) -> Result<(), ProbeError> {
    let prog: &mut TracePoint = program(ebpf, name)?;
    step(name, "load", prog.load())?;
    step(name, "attach", prog.attach(category, event))?;
    log::info!("attached `{name}` to tracepoint {category}/{event}");
    Ok(())
}

fn attach_raw(ebpf: &mut Ebpf, name: &'static str, tracepoint: &str) -> Result<(), ProbeError> {
    let prog: &mut RawTracePoint = program(ebpf, name)?;
    step(name, "load", prog.load())?;
    step(name, "attach", prog.attach(tracepoint))?;
    log::info!("attached `{name}` to raw tracepoint {tracepoint}");
    Ok(())
}

/// The page size, for sizing ring buffers.
fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(size).unwrap_or(4096)
}

fn take_map<M: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<M, ProbeError> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| ProbeError::Missing(format!("map `{name}`")))?;
    M::try_from(map).map_err(|source| ProbeError::Map { map: name, source })
}
