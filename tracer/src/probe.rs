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
        CPU_MAP, CpuState, GLOBAL_FLAGS_OFFSET, GLOBAL_METRICS, GLOBAL_PID_OFFSET, GLOBAL_TGID_OFFSET, HISTS_MAP,
        PROG_SCHED_EXIT, PROG_SCHED_SWITCH, PROG_SCHED_WAKEUP, PROG_SCHED_WAKEUP_NEW,
    },
};

use crate::{
    btf::{BtfError, KernelBtf, TaskOffsets},
    metrics::{Metric, MetricSet},
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

/// What the user asked to attach.
#[derive(Clone, Copy, Debug)]
pub struct ProbeOptions {
    /// The latencies to measure; counting and classifying always happen.
    pub metrics: MetricSet,
}

/// Loaded and attached programs. Dropping this detaches everything.
pub struct Probes {
    // Field order is drop order: maps and logger first, programs last.
    cpu_map: PerCpuArray<MapData, CpuState>,
    hists: PerCpuArray<MapData, Histogram>,
    logger: Option<EbpfLogger<&'static dyn log::Log>>,
    _ebpf: Ebpf,
    /// The metrics measured in this run.
    pub measured: MetricSet,
    /// Metrics asked for that this kernel cannot give, with the reason.
    pub unavailable: Vec<(Metric, String)>,
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

        let mut measured = opts.metrics;
        let mut unavailable = Vec::new();
        if measured.contains(Metric::SwitchCost) && !kernel_btf.has_tracepoint(SCHED_EXIT_TP) {
            measured = measured.without(Metric::SwitchCost);
            unavailable.push((
                Metric::SwitchCost,
                format!("this kernel has no `{SCHED_EXIT_TP}` tracepoint (added in Linux 6.16)"),
            ));
        }
        drop(kernel_btf);

        let btf = aya::Btf::from_sys_fs()?;
        let metrics = measured.bits();
        let mut ebpf = EbpfLoader::new()
            .btf(&btf)
            .override_global(GLOBAL_PID_OFFSET, &offsets.pid, true)
            .override_global(GLOBAL_TGID_OFFSET, &offsets.tgid, true)
            .override_global(GLOBAL_FLAGS_OFFSET, &offsets.flags, true)
            .override_global(GLOBAL_METRICS, &metrics, true)
            // TASK_TIMES (task storage) is only used by the kernel programs.
            .allow_unsupported_maps()
            .load(EBPF_OBJECT)?;

        let logger = match EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(e) => {
                log::warn!("kernel-side diagnostics unavailable: {e}");
                None
            }
        };

        // The programs that feed sched_switch's measurements attach first.
        if measured.contains(Metric::Runq) {
            attach_tp_btf(&mut ebpf, PROG_SCHED_WAKEUP, "sched_wakeup", &btf)?;
            attach_tp_btf(&mut ebpf, PROG_SCHED_WAKEUP_NEW, "sched_wakeup_new", &btf)?;
        }
        if measured.contains(Metric::SwitchCost) {
            attach_tp_btf(&mut ebpf, PROG_SCHED_EXIT, SCHED_EXIT_TP, &btf)?;
        }
        attach_tp_btf(&mut ebpf, PROG_SCHED_SWITCH, "sched_switch", &btf)?;

        Ok(Self {
            cpu_map: take_per_cpu_array(&mut ebpf, CPU_MAP)?,
            hists: take_per_cpu_array(&mut ebpf, HISTS_MAP)?,
            logger,
            _ebpf: ebpf,
            measured,
            unavailable,
            offsets,
            probe: "tp_btf",
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

    /// Reads all counters and histograms now (cumulative since attach).
    pub fn snapshot(&self) -> Result<Snapshot, ProbeError> {
        self.snapshot_cpus(None)
    }

    /// Like [`Probes::snapshot`], with the histograms merged only over `cpus`
    /// (all CPUs when `None`). Counters are always kept per CPU.
    pub fn snapshot_cpus(&self, cpus: Option<&[usize]>) -> Result<Snapshot, ProbeError> {
        let taken_ns = crate::snapshot::monotonic_ns();
        let per_cpu = self
            .cpu_map
            .get(&0, 0)
            .map_err(|source| ProbeError::Map { map: CPU_MAP, source })?;
        let per_cpu_counts = per_cpu.iter().map(|s| s.counts).collect();
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
