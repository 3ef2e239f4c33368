//! `tracer check`: does the tracer work on this kernel? Attaches each probe,
//! runs the pinned thread and process ping-pongs and spinning threads
//! (`spin`) under it, and compares what the tracer saw with the kernel's
//! own accounting (getrusage and /proc/thread-self/schedstat), with stated
//! margins. The live tests and the kernel matrix (`cargo xtask test-kernels`)
//! use the same checks.

mod ping_pong;
mod render;
mod spin;
mod verdict;

use std::collections::BTreeMap;

pub use ping_pong::compare;
pub use render::table;
use tracer_common::metric::Metric;
pub use verdict::{Check, Item, ProbeCheck, WorkloadCheck};

use crate::{
    kernel::btf::BtfError,
    probe::filter::Filter,
    probe::{ProbeError, ProbeKind, ProbeOptions, Probes},
    snapshot::metrics::MetricSet,
    workload::{self, PingPong, Spec},
};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Round trips per workload (each forces two switches).
    pub round_trips: u64,
    /// The CPU both workloads are pinned to.
    pub cpu: usize,
    /// The probes to check, in order.
    pub probes: Vec<ProbeKind>,
    /// See [`ProbeOptions::offcpu_slots`].
    pub offcpu_slots: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{kind}: {source}")]
    Workload { kind: &'static str, source: std::io::Error },
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

/// Runs the check; `progress` is told each step.
pub fn run(options: &Options, mut progress: impl FnMut(&str)) -> Result<Check, CheckError> {
    let mut probes = Vec::new();
    for &kind in &options.probes {
        progress(&format!("attaching the {} probe", kind.name()));
        probes.push(check_probe(options, kind, &mut progress)?);
    }
    let pass = probes.iter().all(|p| p.pass) && probes.iter().any(|p| p.unavailable.is_none());
    // Those the tp_btf probe loaded with; read from BTF only when it was
    // not checked.
    let task_offsets = probes
        .iter()
        .find_map(|p| p.task_offsets)
        .or_else(|| {
            crate::kernel::btf::KernelBtf::from_sys()
                .and_then(|btf| btf.task_offsets())
                .ok()
        })
        .map(|o| BTreeMap::from([("pid", o.pid), ("tgid", o.tgid)]));
    Ok(Check {
        kernel_release: crate::kernel::release(),
        btf: std::path::Path::new(crate::kernel::btf::VMLINUX_BTF).exists(),
        task_offsets,
        probes,
        pass,
    })
}

fn check_probe(options: &Options, kind: ProbeKind, progress: &mut impl FnMut(&str)) -> Result<ProbeCheck, CheckError> {
    let mut check = ProbeCheck {
        probe: kind.name(),
        unavailable: None,
        error: None,
        metrics: Vec::new(),
        missing: BTreeMap::new(),
        task_times: None,
        offcpu_slots: None,
        workloads: Vec::new(),
        pass: false,
        task_offsets: None,
    };
    let mut probes = match attach(kind, options.offcpu_slots) {
        Ok(p) => p,
        // Not root: nothing can be checked at all.
        Err(e @ ProbeError::Privilege(_)) => return Err(e.into()),
        Err(e @ ProbeError::Btf(BtfError::Missing(_))) => {
            check.unavailable = Some(e.to_string());
            check.pass = true;
            return Ok(check);
        }
        Err(e) => {
            check.error = Some(e.to_string());
            return Ok(check);
        }
    };
    check.metrics = probes.measured.iter().map(Metric::key).collect();
    check.missing = probes
        .unavailable
        .iter()
        .map(|(m, why)| (m.key(), why.clone()))
        .collect();
    check.task_offsets = probes.task_offsets;
    check.offcpu_slots = Some(probes.offcpu_slots).filter(|&n| n > 0);
    if check.offcpu_slots.is_some() {
        check.task_times = Some(if probes.task_storage {
            "task_storage"
        } else {
            "lru_hash"
        });
    }
    let cpus = [options.cpu];
    // Warm up both workloads under the freshly loaded programs (page faults,
    // caches; under emulation also the first translation of new code), so
    // that the measured runs are what they measure.
    for ping_pong in [PingPong::Threads, PingPong::Processes] {
        let warmup = (options.round_trips / 10).clamp(100, 10_000);
        workload::run(&Spec::new(ping_pong, options.cpu, warmup)).map_err(|source| CheckError::Workload {
            kind: ping_pong_name(ping_pong),
            source,
        })?;
    }
    for ping_pong in [PingPong::Threads, PingPong::Processes] {
        let name = ping_pong.name();
        progress(&format!("{} probe: {name} ping-pong", kind.name()));
        let before = probes.snapshot_cpus(Some(&cpus))?;
        let outcome = workload::run(&Spec::new(ping_pong, options.cpu, options.round_trips)).map_err(|source| {
            CheckError::Workload {
                kind: ping_pong_name(ping_pong),
                source,
            }
        })?;
        let after = probes.snapshot_cpus(Some(&cpus))?;
        check
            .workloads
            .push(compare(ping_pong, options, &outcome, &after.since(&before), &probes));
    }
    progress(&format!("{} probe: spinning threads", kind.name()));
    check.workloads.push(spin::check(options, &mut probes)?);
    check.pass = check.workloads.iter().all(WorkloadCheck::pass);
    Ok(check)
}

fn ping_pong_name(kind: PingPong) -> &'static str {
    match kind {
        PingPong::Threads => "thread ping-pong",
        PingPong::Processes => "process ping-pong",
    }
}

/// Attaches `kind` with all metrics, tracing only this process and the
/// children it forks: switches from and to other tasks on the workload's
/// CPU are still counted, but the latencies measured are the workload's
/// own, which the kernel's accounting of the workload can be held to on a
/// busy machine.
pub fn attach(kind: ProbeKind, offcpu_slots: Option<u32>) -> Result<Probes, ProbeError> {
    Probes::attach(ProbeOptions {
        offcpu_slots,
        metrics: MetricSet::ALL,
        probe: kind,
        filter: Filter {
            tgids: vec![std::process::id()],
            command: true,
            ..Default::default()
        },
        ..Default::default()
    })
}

/// Counters and histograms are read one map after the other while the
/// machine runs on: a few switches (seen: 2, of the check's own threads once
/// it is off the workload's CPU again) fall between the two reads.
pub(crate) const SNAPSHOT_SKEW: u64 = 20;
