//! `--per-process`: the processes that exited during the run. The kernel
//! queues each one that is gone (its leader freed) and has a row in its
//! table; userspace reads the row's final counts into [`ExitedProcs`] and
//! deletes it, so the kernel table holds live processes only and a snapshot
//! reads only those. Reports show live and exited processes alike.
//!
//! The table is bounded: beyond [`MAX_EXITED`] rows, the exited process with
//! the fewest switches out (the one leaving or the smallest kept) is summed
//! into one row, tgid [`FOLDED_TGID`] named [`FOLDED_COMM`]. A process is
//! only folded when [`MAX_EXITED`] exited processes had at least as many
//! switches out, so a top-N table is exact for any N up to that.

use std::collections::{BTreeMap, BTreeSet};

use crate::snapshot::process::ProcSnapshot;

/// How many exited processes keep a row of their own (about 100 bytes each).
pub const MAX_EXITED: usize = 65_536;

/// The tgid of the row that sums the exited processes beyond [`MAX_EXITED`]:
/// that of the idle task, which never has a row of its own.
pub const FOLDED_TGID: u32 = 0;

/// The name of that row.
pub const FOLDED_COMM: [u8; 16] = *b"(exited)\0\0\0\0\0\0\0\0";

/// Exited processes by tgid, and the sum of those beyond the bound.
#[derive(Clone, Debug)]
pub struct ExitedProcs {
    rows: BTreeMap<u32, ProcSnapshot>,
    /// `(switches out, tgid)` of every row: the first is the next to fold.
    smallest: BTreeSet<(u64, u32)>,
    /// The processes folded so far, summed; `None` before the first.
    folded: Option<ProcSnapshot>,
    /// How many processes are in `folded`.
    folded_count: u64,
    capacity: usize,
}

impl Default for ExitedProcs {
    fn default() -> Self {
        Self::with_capacity(MAX_EXITED)
    }
}

impl ExitedProcs {
    /// A table that keeps at most `capacity` rows of their own.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            rows: BTreeMap::new(),
            smallest: BTreeSet::new(),
            folded: None,
            folded_count: 0,
            capacity,
        }
    }

    /// Rows kept, not counting the folded one.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.folded.is_none()
    }

    /// How many exited processes were summed into the folded row.
    pub fn folded_count(&self) -> u64 {
        self.folded_count
    }

    /// Adds the final counts of a process that is gone.
    pub fn add(&mut self, tgid: u32, p: ProcSnapshot) {
        if tgid == FOLDED_TGID {
            // Never from the kernel (the idle task has no row); kept anyway.
            self.fold(&p);
            return;
        }
        if let Some(row) = self.rows.get_mut(&tgid) {
            // The tgid was reused during the run: one row for all its owners
            // (as a kernel table that never forgets would have it), under
            // the latest name.
            self.smallest.remove(&(row.switches_out(), tgid));
            row.add(&p);
            row.comm = p.comm;
            self.smallest.insert((row.switches_out(), tgid));
            return;
        }
        if self.rows.len() >= self.capacity {
            match self.smallest.first().copied() {
                Some((out, victim)) if out < p.switches_out() => {
                    self.smallest.remove(&(out, victim));
                    if let Some(v) = self.rows.remove(&victim) {
                        self.fold(&v);
                    }
                }
                _ => {
                    self.fold(&p);
                    return;
                }
            }
        }
        self.smallest.insert((p.switches_out(), tgid));
        self.rows.insert(tgid, p);
    }

    fn fold(&mut self, p: &ProcSnapshot) {
        let folded = self.folded.get_or_insert_with(|| ProcSnapshot {
            comm: FOLDED_COMM,
            ..Default::default()
        });
        folded.add(p);
        self.folded_count += 1;
    }

    /// The live processes and the exited ones, in one map. A tgid that is
    /// in both (reused) gets one row, the sum, under the live process's name.
    pub fn merged_with(&self, live: BTreeMap<u32, ProcSnapshot>) -> BTreeMap<u32, ProcSnapshot> {
        // Both in tgid order (the folded row's tgid is 0, the lowest): one
        // pass, and a map built from sorted rows, its nodes full.
        let exited = self
            .folded
            .iter()
            .map(|f| (FOLDED_TGID, f))
            .chain(self.rows.iter().map(|(&tgid, p)| (tgid, p)));
        let mut exited = exited.peekable();
        let mut live = live.into_iter().peekable();
        std::iter::from_fn(|| match (live.peek(), exited.peek()) {
            (Some((l, _)), Some((e, _))) if l == e => {
                let (tgid, mut p) = live.next()?;
                p.add(exited.next()?.1);
                Some((tgid, p))
            }
            (Some((l, _)), Some((e, _))) if e < l => exited.next().map(|(tgid, p)| (tgid, p.clone())),
            (Some(_), _) => live.next(),
            (None, _) => exited.next().map(|(tgid, p)| (tgid, p.clone())),
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::Class;

    use super::*;

    fn proc(name: &[u8], out: u64, r#in: u64) -> ProcSnapshot {
        let mut p = ProcSnapshot::default();
        p.comm[..name.len()].copy_from_slice(name);
        p.out[Class::Thread.index()] = out;
        p.r#in[Class::Process.index()] = r#in;
        p
    }

    fn merged(t: &ExitedProcs) -> BTreeMap<u32, ProcSnapshot> {
        t.merged_with(BTreeMap::new())
    }

    #[test]
    fn keeps_rows_until_full_then_folds_the_smallest() {
        let mut t = ExitedProcs::with_capacity(3);
        t.add(10, proc(b"a", 5, 1));
        t.add(11, proc(b"b", 2, 1));
        t.add(12, proc(b"c", 9, 1));
        assert_eq!((t.len(), t.folded_count()), (3, 0));
        assert!(!merged(&t).contains_key(&FOLDED_TGID));
        // Smaller than every row kept: folded itself.
        t.add(13, proc(b"d", 1, 1));
        // Bigger than the smallest kept (11, 2 out): takes its place.
        t.add(14, proc(b"e", 7, 1));
        assert_eq!((t.len(), t.folded_count()), (3, 2));
        let m = merged(&t);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [FOLDED_TGID, 10, 12, 14]);
        let folded = &m[&FOLDED_TGID];
        assert_eq!(folded.comm, FOLDED_COMM);
        assert_eq!(folded.switches_out(), 1 + 2);
        assert_eq!(folded.r#in[Class::Process.index()], 2);
        // A tie stays out: the older row is kept.
        t.add(15, proc(b"f", 5, 0));
        assert!(!merged(&t).contains_key(&15));
        assert_eq!(merged(&t)[&FOLDED_TGID].switches_out(), 1 + 2 + 5);
    }

    #[test]
    fn a_reused_tgid_sums_into_one_row_under_the_latest_name() {
        let mut t = ExitedProcs::with_capacity(2);
        t.add(7, proc(b"old", 3, 1));
        t.add(8, proc(b"x", 4, 0));
        t.add(7, proc(b"new", 2, 1));
        let m = merged(&t);
        assert_eq!(m[&7].switches_out(), 5);
        assert_eq!(&m[&7].comm[..3], b"new");
        // The sum is its size now: 8 (4 out) is the smallest.
        t.add(9, proc(b"y", 6, 0));
        assert_eq!(merged(&t).keys().copied().collect::<Vec<_>>(), [FOLDED_TGID, 7, 9]);
    }

    #[test]
    fn live_and_exited_rows_of_one_tgid_are_summed_under_the_live_name() {
        let mut t = ExitedProcs::default();
        t.add(5, proc(b"gone", 10, 2));
        t.add(9, proc(b"gone too", 1, 0));
        let live = BTreeMap::from([
            (5, proc(b"live", 1, 1)),
            (6, proc(b"other", 4, 0)),
            (12, proc(b"z", 2, 0)),
        ]);
        let all = t.merged_with(live);
        assert_eq!(all.keys().copied().collect::<Vec<_>>(), [5, 6, 9, 12]);
        assert_eq!(all[&5].switches_out(), 11);
        assert_eq!(&all[&5].comm[..4], b"live");
        assert_eq!(all[&6].switches_out(), 4);
        assert_eq!(all[&9].switches_out(), 1);
    }
}
