//! What tracer itself costs (`--self-stats`): its kernel programs' run
//! counts and times, its maps' kernel memory, its CPU time and its memory.

pub use crate::kernel::bpf_listing::MapMemory;

/// One kernel program's statistics (cumulative while stats are on).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramStats {
    pub name: String,
    pub runs: u64,
    pub run_ns: u64,
}

/// What tracer itself costs, cumulative (`--self-stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnCost {
    /// Each attached kernel program.
    pub programs: Vec<ProgramStats>,
    /// Each of tracer's maps, as the kernel charges it (not a difference).
    pub maps: Vec<MapMemory>,
    /// User + system CPU time of this process.
    pub cpu_ns: u64,
    /// Resident set size now, in bytes (not a difference).
    pub rss_bytes: u64,
}

impl OwnCost {
    pub fn now(programs: Vec<ProgramStats>, maps: Vec<MapMemory>) -> Self {
        // SAFETY: an all-zero rusage is valid; getrusage fills it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable rusage.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
        let rss_kib = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
            .unwrap_or(0);
        Self {
            programs,
            maps,
            cpu_ns: tv(ru.ru_utime) + tv(ru.ru_stime),
            rss_bytes: rss_kib * 1024,
        }
    }

    pub(super) fn minus(&self, earlier: &Self) -> Self {
        Self {
            programs: self
                .programs
                .iter()
                .map(|p| {
                    let before = earlier.programs.iter().find(|e| e.name == p.name);
                    ProgramStats {
                        name: p.name.clone(),
                        runs: p.runs.saturating_sub(before.map_or(0, |b| b.runs)),
                        run_ns: p.run_ns.saturating_sub(before.map_or(0, |b| b.run_ns)),
                    }
                })
                .collect(),
            maps: self.maps.clone(),
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            rss_bytes: self.rss_bytes,
        }
    }
}
