//! Loads the embedded kernel programs, configures them for the running
//! kernel, attaches them, and reads their maps.

mod attach;
mod error;
pub mod filter;
mod floor;
mod hists;
mod maps;
mod object;
mod options;
mod plan;
mod procs;
mod read;

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, PerCpuArray},
};
use aya_log::EbpfLogger;
use tracer_common::{names::map, values::CpuState};

pub use error::ProbeError;
pub use floor::attach_floor;
use hists::MappedHists;
use maps::{FilterMaps, take_map};
use object::ebpf_object;
pub use object::embedded as embedded_objects;
pub use options::{ProbeKind, ProbeOptions};
use plan::Plan;
pub use plan::SCHED_EXIT_TP;
use procs::ProcMaps;

use crate::{
    kernel::btf::TaskOffsets,
    kernel::privilege,
    snapshot::metrics::{Metric, MetricSet},
};

/// How often the session retires exited processes from the kernel's
/// per-process tables (and every snapshot does too).
pub const RETIRE_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Loaded and attached programs. Dropping this detaches everything.
pub struct Probes {
    // Field order is drop order: maps and logger first, programs last.
    cpu_map: PerCpuArray<MapData, CpuState>,
    hists: MappedHists,
    tgids: HashMap<MapData, u32, u8>,
    /// The other filter maps, held open with the programs that use them.
    _filter_maps: (HashMap<MapData, u32, u8>, Array<MapData, u8>),
    procs: Option<ProcMaps>,
    logger: Option<EbpfLogger<&'static dyn log::Log>>,
    /// Keeps the kernel's per-program run-time statistics on (`--self-stats`).
    stats: Option<std::os::fd::OwnedFd>,
    /// With `--self-stats`: the maps' kernel memory, read once (it does not
    /// change after loading).
    map_memory: Vec<crate::snapshot::MapMemory>,
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

impl Probes {
    /// Checks privileges, picks the probe, loads, attaches.
    pub fn attach(opts: ProbeOptions) -> Result<Self, ProbeError> {
        privilege::check()?;
        let mut plan = Plan::new(&opts)?;
        let (object, task_storage) = ebpf_object(plan.probe);
        let cpus = hists::possible_cpus()?;
        let mut ebpf = plan.load(&opts, object, task_storage, cpus)?;
        let mut cpu_map = take_map(&mut ebpf, map::CPU)?;
        hists::give_each_cpu_its_histograms(&mut cpu_map, cpus)?;
        let hists = MappedHists::map(&ebpf, cpus)?;
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
            cpu_map,
            hists,
            tgids: filters.tgids,
            _filter_maps: (filters._tids, filters._cpus),
            procs: if opts.per_process {
                Some(ProcMaps::take(&mut ebpf)?)
            } else {
                None
            },
            logger,
            stats: None,
            map_memory: Vec::new(),
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
        self.map_memory = crate::kernel::bpf_listing::own_maps();
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
        self.tgids.insert(&tgid, &1, 0).map_err(|source| ProbeError::Map {
            map: map::TGIDS,
            source,
        })
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
}
