//! Taking maps out of the loaded object, and filling the filter maps.

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData},
};
use tracer_common::names::map;

use super::{error::ProbeError, filter::Filter};

/// The filter maps, filled before anything attaches. Taken maps stay open
/// until the programs that use them are loaded: these live with `Probes`.
pub(super) struct FilterMaps {
    pub(super) tgids: HashMap<MapData, u32, u8>,
    pub(super) _tids: HashMap<MapData, u32, u8>,
    pub(super) _cpus: Array<MapData, u8>,
}

impl FilterMaps {
    pub(super) fn fill(ebpf: &mut Ebpf, filter: &Filter) -> Result<Self, ProbeError> {
        let mut tgids: HashMap<MapData, u32, u8> = take_map(ebpf, map::TGIDS)?;
        for tgid in &filter.tgids {
            tgids.insert(tgid, &1, 0).map_err(|source| ProbeError::Map {
                map: map::TGIDS,
                source,
            })?;
        }
        let mut tids: HashMap<MapData, u32, u8> = take_map(ebpf, map::TIDS)?;
        for tid in &filter.tids {
            tids.insert(tid, &1, 0)
                .map_err(|source| ProbeError::Map { map: map::TIDS, source })?;
        }
        let mut cpus: Array<MapData, u8> = take_map(ebpf, map::CPUS)?;
        for &cpu in filter.cpus.iter().flatten() {
            cpus.set(cpu as u32, &1, 0)
                .map_err(|source| ProbeError::Map { map: map::CPUS, source })?;
        }
        Ok(Self {
            tgids,
            _tids: tids,
            _cpus: cpus,
        })
    }
}

/// The page size, for sizing ring buffers.
pub(super) fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(size).unwrap_or(4096)
}

pub(super) fn take_map<M: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<M, ProbeError> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| ProbeError::Missing(format!("map `{name}`")))?;
    M::try_from(map).map_err(|source| ProbeError::Map { map: name, source })
}
