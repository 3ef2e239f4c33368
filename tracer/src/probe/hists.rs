//! The histograms, read through a memory mapping of the kernel's array
//! (`BPF_F_MMAPABLE`): each refresh reads the buckets in place, with no
//! syscall and no copy, and the cost of a refresh is one pass over the
//! buckets of the CPUs it merges.

use std::{
    os::fd::{AsFd as _, AsRawFd as _},
    ptr::NonNull,
};

use aya::{
    Ebpf,
    maps::{Map, MapData, PerCpuArray, PerCpuValues},
};
use tracer_common::{
    hist::{Histogram, NUM_BUCKETS},
    metric::NUM_HISTS,
    names::map,
    values::CpuState,
};

use super::error::ProbeError;
use crate::snapshot::ClassHistogram;

/// The number of CPUs the kernel can ever have (`/sys/devices/system/cpu/possible`):
/// `HISTS` has histograms for each, as a per-CPU map would.
pub(super) fn possible_cpus() -> Result<usize, ProbeError> {
    aya::util::nr_cpus()
        .map(|n| n.get() as usize)
        .map_err(|(what, e)| ProbeError::Unsupported(format!("cannot count the possible CPUs ({what}): {e}")))
}

/// Gives each CPU its own histograms: writes `CpuState::hist_base` (CPU
/// number x [`NUM_HISTS`]) into every CPU's state, before the programs run.
pub(super) fn give_each_cpu_its_histograms(
    cpu_map: &mut PerCpuArray<MapData, CpuState>,
    cpus: usize,
) -> Result<(), ProbeError> {
    let states: Vec<CpuState> = (0..cpus)
        .map(|cpu| CpuState {
            hist_base: (cpu * NUM_HISTS) as u32,
            ..CpuState::default()
        })
        .collect();
    let values = PerCpuValues::try_from(states).map_err(|e| ProbeError::Map {
        map: map::CPU,
        source: aya::maps::MapError::IoError(e),
    })?;
    cpu_map
        .set(0, values, 0)
        .map_err(|source| ProbeError::Map { map: map::CPU, source })
}

/// `HISTS`, mapped read-only: `cpus` x [`NUM_HISTS`] histograms.
pub(super) struct MappedHists {
    base: NonNull<Histogram>,
    len: usize,
    cpus: usize,
}

// SAFETY: the mapping is read-only shared memory, valid until drop; the
// struct only hands out copies of what it reads.
unsafe impl Send for MappedHists {}

impl MappedHists {
    /// Maps `HISTS` of `ebpf`, which holds `cpus` x [`NUM_HISTS`] entries.
    pub(super) fn map(ebpf: &Ebpf, cpus: usize) -> Result<Self, ProbeError> {
        let Some(Map::Array(data)) = ebpf.map(map::HISTS) else {
            return Err(ProbeError::Unsupported(format!(
                "no array map {} in the object",
                map::HISTS
            )));
        };
        let bytes = cpus * NUM_HISTS * size_of::<Histogram>();
        let len = bytes.next_multiple_of(super::maps::page_size() as usize);
        let fd = data.fd().as_fd().as_raw_fd();
        // SAFETY: a shared read-only mapping of an mmapable array map's data,
        // `len` bytes from offset 0: the size the kernel allows (its entries,
        // rounded up to a page). Nothing else is mapped at the address.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, fd, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(ProbeError::Unsupported(format!(
                "cannot map the histograms into memory: {}",
                std::io::Error::last_os_error()
            )));
        }
        let base = NonNull::new(ptr.cast::<Histogram>()).expect("mmap returned a non-null address");
        Ok(Self { base, len, cpus })
    }

    /// Histogram `index` (a [`tracer_common::Metric::hist_index`]) merged
    /// over `cpus` (every CPU when `None`).
    pub(super) fn sum(&self, index: u32, cpus: Option<&[usize]>) -> ClassHistogram {
        let mut out = ClassHistogram::default();
        for cpu in (0..self.cpus).filter(|cpu| cpus.is_none_or(|c| c.contains(cpu))) {
            let entry = cpu * NUM_HISTS + index as usize;
            // SAFETY: `entry` < cpus x NUM_HISTS, inside the mapping;
            // Histogram is plain u64s, 8-aligned like the page-aligned base.
            let hist = unsafe { self.base.as_ptr().add(entry) };
            for (i, total) in out.buckets.iter_mut().enumerate().take(NUM_BUCKETS) {
                // SAFETY: inside `hist`. The kernel adds to it meanwhile, so
                // each u64 is read once, whole (aligned), never cached.
                *total += unsafe { std::ptr::addr_of!((*hist).buckets[i]).read_volatile() };
            }
            // SAFETY: as above.
            out.sum_ns += unsafe { std::ptr::addr_of!((*hist).sum_ns).read_volatile() };
        }
        out
    }
}

impl Drop for MappedHists {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}
