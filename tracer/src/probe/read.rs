//! Reading the maps into a [`Snapshot`].

use tracer_common::{class::NUM_CLASSES, names::map};

use super::{Probes, error::ProbeError};
use crate::snapshot::{ClassHistogram, Snapshot};

impl Probes {
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
            .map_err(|source| ProbeError::Map { map: map::CPU, source })?;
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
                hists.push(self.hists.sum(metric.hist_index(class), cpus));
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
                .then(|| crate::snapshot::OwnCost::now(self.program_stats(), self.map_memory.clone())),
        })
    }
}
