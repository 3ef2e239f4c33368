//! `--per-process`: the kernel's per-process tables, and retiring the
//! processes that are gone from them.

use std::collections::BTreeMap;

use aya::{
    Ebpf,
    maps::{HashMap, MapData, RingBuf},
};
use tracer_common::{names::map, values::ProcCounts};

use super::{error::ProbeError, maps::take_map};
use crate::snapshot::{ProcSnapshot, exited::ExitedProcs};

/// `--per-process`: the kernel's tables of live processes, the queue of
/// those gone, and the exited processes already taken out of the tables.
pub(super) struct ProcMaps {
    /// Switch counters by tgid.
    counts: HashMap<MapData, u32, ProcCounts>,
    /// Names by tgid.
    comms: HashMap<MapData, u32, [u8; 16]>,
    /// Tgids of processes gone, to retire.
    exits: RingBuf<MapData>,
    exited: ExitedProcs,
    /// Tgids read from `exits` in one drain (kept to reuse its allocation).
    queued: Vec<u32>,
    /// `procs_unretired` as last warned about.
    pub(super) unretired: u64,
}

impl ProcMaps {
    pub(super) fn take(ebpf: &mut Ebpf) -> Result<Self, ProbeError> {
        Ok(Self {
            counts: take_map(ebpf, map::PROCS)?,
            comms: take_map(ebpf, map::COMMS)?,
            exits: take_map(ebpf, map::EXITED)?,
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
    /// ([`super::RETIRE_PERIOD`]) makes that need a full wrap of the pid space in
    /// under a second.
    pub(super) fn retire(&mut self) -> usize {
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
    pub(super) fn read(&self) -> BTreeMap<u32, ProcSnapshot> {
        let mut procs = BTreeMap::new();
        for entry in self.counts.iter() {
            // An entry can vanish between listing and reading: skip it.
            let Ok((tgid, values)) = entry else { continue };
            procs.insert(tgid, self.row(tgid, &values));
        }
        self.exited.merged_with(procs)
    }

    /// One process's row: its counters, and its name.
    fn row(&self, tgid: u32, counts: &ProcCounts) -> ProcSnapshot {
        let mut p = ProcSnapshot::sum_of([counts]);
        p.comm = self.comms.get(&tgid, 0).unwrap_or_default();
        p
    }
}
