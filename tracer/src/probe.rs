//! Loads the embedded kernel programs, configures them for the running
//! kernel, attaches them, and reads their maps.

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray},
    programs::BtfTracePoint,
};
use aya_log::EbpfLogger;
use tracer_common::{
    class::NUM_CLASSES,
    hist::Histogram,
    maps::{
        COUNTS_MAP, GLOBAL_FLAGS_OFFSET, GLOBAL_PID_OFFSET, GLOBAL_SWITCH_COST, GLOBAL_TGID_OFFSET, PROG_SCHED_EXIT,
        PROG_SCHED_SWITCH, SWITCH_COST_MAP, SwitchCounts,
    },
};

use crate::{
    btf::{BtfError, KernelBtf, TaskOffsets},
    privilege::{self, PrivilegeError},
    snapshot::{ClassHistogram, Snapshot},
};

/// The kernel programs, built by `build.rs` for the BPF target.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

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
    #[error("kernel object has no {0}")]
    Missing(String),
    #[error("cannot read map {map}: {source}")]
    Map {
        map: &'static str,
        source: aya::maps::MapError,
    },
}

/// Whether `switch_cost_ns` is measured in this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchCost {
    Measured,
    /// The user turned it off.
    Disabled,
    /// The kernel cannot give it; the reason, for the user.
    Unavailable(String),
}

/// What the user asked to attach.
#[derive(Clone, Copy, Debug)]
pub struct ProbeOptions {
    pub switch_cost: bool,
}

/// Loaded and attached programs. Dropping this detaches everything.
pub struct Probes {
    // Field order is drop order: maps and logger first, programs last.
    counts: PerCpuArray<MapData, SwitchCounts>,
    switch_cost_map: Option<PerCpuArray<MapData, Histogram>>,
    logger: Option<EbpfLogger<&'static dyn log::Log>>,
    _ebpf: Ebpf,
    pub switch_cost: SwitchCost,
    pub offsets: TaskOffsets,
    pub probe: &'static str,
}

impl Probes {
    /// Checks privileges and BTF, loads, attaches.
    pub fn attach(opts: ProbeOptions) -> Result<Self, ProbeError> {
        privilege::check()?;
        let kernel_btf = KernelBtf::from_sys()?;
        let offsets = kernel_btf.task_offsets()?;
        log::info!("task_struct offsets from kernel BTF: {offsets:?}");

        let switch_cost = if !opts.switch_cost {
            SwitchCost::Disabled
        } else if kernel_btf.has_tracepoint(SCHED_EXIT_TP) {
            SwitchCost::Measured
        } else {
            SwitchCost::Unavailable(format!(
                "this kernel has no `{SCHED_EXIT_TP}` tracepoint (added in Linux 6.16)"
            ))
        };
        drop(kernel_btf);

        let btf = aya::Btf::from_sys_fs()?;
        let measure = u8::from(switch_cost == SwitchCost::Measured);
        let mut ebpf = EbpfLoader::new()
            .btf(&btf)
            .override_global(GLOBAL_PID_OFFSET, &offsets.pid, true)
            .override_global(GLOBAL_TGID_OFFSET, &offsets.tgid, true)
            .override_global(GLOBAL_FLAGS_OFFSET, &offsets.flags, true)
            .override_global(GLOBAL_SWITCH_COST, &measure, true)
            .load(EBPF_OBJECT)?;

        let logger = match EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(e) => {
                log::warn!("kernel-side diagnostics unavailable: {e}");
                None
            }
        };

        if switch_cost == SwitchCost::Measured {
            attach_tp_btf(&mut ebpf, PROG_SCHED_EXIT, SCHED_EXIT_TP, &btf)?;
        }
        attach_tp_btf(&mut ebpf, PROG_SCHED_SWITCH, "sched_switch", &btf)?;

        let counts = take_per_cpu_array(&mut ebpf, COUNTS_MAP)?;
        let switch_cost_map = if switch_cost == SwitchCost::Measured {
            Some(take_per_cpu_array(&mut ebpf, SWITCH_COST_MAP)?)
        } else {
            None
        };
        Ok(Self {
            counts,
            switch_cost_map,
            logger,
            _ebpf: ebpf,
            switch_cost,
            offsets,
            probe: "tp_btf",
        })
    }

    /// The kernel-side log ring buffer, to be polled for diagnostics.
    pub fn take_logger(&mut self) -> Option<EbpfLogger<&'static dyn log::Log>> {
        self.logger.take()
    }

    /// Reads all counters and histograms now (cumulative since attach).
    pub fn snapshot(&self) -> Result<Snapshot, ProbeError> {
        self.snapshot_cpus(None)
    }

    /// Like [`Probes::snapshot`], with the histograms merged only over `cpus`
    /// (all CPUs when `None`). Counters are always kept per CPU.
    pub fn snapshot_cpus(&self, cpus: Option<&[usize]>) -> Result<Snapshot, ProbeError> {
        let taken = crate::snapshot::monotonic_ns();
        let per_cpu = self.counts.get(&0, 0).map_err(|source| ProbeError::Map {
            map: COUNTS_MAP,
            source,
        })?;
        let per_cpu_counts: Vec<SwitchCounts> = per_cpu.iter().copied().collect();
        let switch_cost = match &self.switch_cost_map {
            None => None,
            Some(map) => {
                let mut hists = Vec::with_capacity(NUM_CLASSES);
                for class in 0..NUM_CLASSES as u32 {
                    let values = map.get(&class, 0).map_err(|source| ProbeError::Map {
                        map: SWITCH_COST_MAP,
                        source,
                    })?;
                    let wanted = values
                        .iter()
                        .enumerate()
                        .filter(|(cpu, _)| cpus.is_none_or(|cpus| cpus.contains(cpu)))
                        .map(|(_, h)| h);
                    hists.push(ClassHistogram::sum_of(wanted));
                }
                Some(hists)
            }
        };
        Ok(Snapshot {
            taken_ns: taken,
            per_cpu_counts,
            switch_cost,
        })
    }
}

fn attach_tp_btf(ebpf: &mut Ebpf, program: &'static str, tracepoint: &str, btf: &aya::Btf) -> Result<(), ProbeError> {
    let prog: &mut BtfTracePoint = ebpf
        .program_mut(program)
        .ok_or_else(|| ProbeError::Missing(format!("program `{program}`")))?
        .try_into()
        .map_err(|source| ProbeError::Program {
            action: "find",
            program,
            source,
        })?;
    prog.load(tracepoint, btf).map_err(|source| ProbeError::Program {
        action: "load",
        program,
        source,
    })?;
    prog.attach().map_err(|source| ProbeError::Program {
        action: "attach",
        program,
        source,
    })?;
    log::info!("attached `{program}` to tp_btf/{tracepoint}");
    Ok(())
}

fn take_per_cpu_array<T: aya::Pod>(ebpf: &mut Ebpf, name: &'static str) -> Result<PerCpuArray<MapData, T>, ProbeError> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| ProbeError::Missing(format!("map `{name}`")))?;
    PerCpuArray::try_from(map).map_err(|source| ProbeError::Map { map: name, source })
}
