//! The per-process breakdown (`--per-process`).

use crate::snapshot::Snapshot;

/// The per-process breakdown.
#[derive(Clone, Debug)]
pub struct Processes {
    /// The top processes, most switches out first.
    pub top: Vec<ProcessReport>,
    /// Processes with switches in the span, shown or not.
    pub total: usize,
    /// Per-process counts the kernel could not keep (its map was full).
    pub dropped: u64,
}

impl Processes {
    /// The `top` processes of `delta` by switches out; `None` when it has no
    /// per-process counts.
    pub fn of(delta: &Snapshot, top: usize) -> Option<Self> {
        delta.procs.as_ref().map(|procs| {
            let mut all: Vec<ProcessReport> = procs
                .iter()
                .map(|(&tgid, p)| ProcessReport {
                    tgid,
                    comm: p.comm.iter().copied().take_while(|&b| b != 0).collect(),
                    out: p.out,
                    r#in: p.r#in,
                })
                .collect();
            all.sort_by(|a, b| b.switches_out().cmp(&a.switches_out()).then(a.tgid.cmp(&b.tgid)));
            let total = all.len();
            all.truncate(top);
            Processes {
                top: all,
                total,
                dropped: delta.procs_dropped,
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessReport {
    pub tgid: u32,
    /// Process name: of its first task seen, or as of its last exec.
    pub comm: Vec<u8>,
    /// Switches taking one of its tasks out, by class index.
    pub out: [u64; 4],
    /// Switches bringing one of its tasks in, by class index.
    pub r#in: [u64; 4],
}

impl ProcessReport {
    pub fn switches_out(&self) -> u64 {
        self.out.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::Class;

    use crate::{
        report::{Report, tests::meta},
        snapshot::{Snapshot, metrics::MetricSet},
    };

    #[test]
    fn per_process_top_n_by_switches_out() {
        let mut a = Snapshot::empty(1, MetricSet::NONE);
        a.procs = Some(Default::default());
        let mut b = a.clone();
        let procs = b.procs.as_mut().unwrap();
        for tgid in 1..=30u32 {
            let mut p = crate::snapshot::ProcSnapshot::default();
            p.comm[..4].copy_from_slice(b"proc");
            p.out[Class::Thread.index()] = u64::from(tgid);
            p.r#in[Class::Process.index()] = 1;
            procs.insert(tgid, p);
        }
        let mut m = meta();
        m.top = 5;
        let r = Report::between(&a, &b, m);
        let p = r.processes.unwrap();
        assert_eq!(p.total, 30);
        assert_eq!(p.top.iter().map(|p| p.tgid).collect::<Vec<_>>(), [30, 29, 28, 27, 26]);
        assert_eq!(p.top[0].comm, b"proc");
    }
}
