//! The embedded kernel programs, and which of them suits the running kernel.

use super::options::ProbeKind;

/// The kernel programs, built by `build.rs` for the BPF target.
pub(super) static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));
/// The same programs with per-task timestamps in an LRU hash instead of task
/// storage, for kernels before 5.11.
pub(super) static EBPF_OBJECT_LRU: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-lru"));

/// The kernel programs for the running kernel, and whether they keep
/// per-task timestamps in task storage (else in an LRU hash by thread id,
/// which the classic-tracepoint probe needs: it has no task pointers).
pub(super) fn ebpf_object(probe: ProbeKind) -> (&'static [u8], bool) {
    if probe == ProbeKind::Tracepoint {
        return (EBPF_OBJECT_LRU, false);
    }
    match aya::sys::is_map_supported(aya::maps::MapType::TaskStorage) {
        Ok(true) => (EBPF_OBJECT, true),
        Ok(false) => {
            log::info!("no task storage maps (Linux < 5.11): per-task timestamps in an LRU hash");
            (EBPF_OBJECT_LRU, false)
        }
        Err(e) => {
            log::warn!("cannot tell whether this kernel has task storage maps ({e}); assuming it does");
            (EBPF_OBJECT, true)
        }
    }
}

/// Both embedded objects by name (`tracer`, `tracer-lru`), for the tests
/// that check them against the names and layouts in `tracer-common` without
/// a kernel.
pub fn embedded() -> [(&'static str, &'static [u8]); 2] {
    [("tracer", EBPF_OBJECT), ("tracer-lru", EBPF_OBJECT_LRU)]
}
