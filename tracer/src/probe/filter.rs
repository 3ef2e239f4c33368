//! What to trace: processes, threads, a task name, CPUs. Parsed and checked
//! against the running system before anything is attached; evaluated in the
//! kernel.

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use tracer_common::{
    bounds::MAX_CPUS, bounds::MAX_TGIDS, bounds::MAX_TIDS, filter::FILTER_CGROUP, filter::FILTER_COMM,
    filter::FILTER_CPU, filter::FILTER_TGID, filter::FILTER_TID,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("`{0}` is not a CPU list: expected numbers and ranges, e.g. 0-3,7")]
    CpuList(String),
    #[error("CPU {cpu} does not exist: this machine's CPUs are {online}")]
    NoCpu { cpu: usize, online: String },
    #[error("no process with pid {0} (a --pid is a process id, the tgid)")]
    NoProcess(u32),
    #[error("{0} is a thread of process {1}, not a process: use --tid {0} or --pid {1}")]
    NotAProcess(u32, u32),
    #[error("no thread with tid {0}")]
    NoThread(u32),
    #[error("task name `{0}` is longer than the kernel's 15 bytes, so no task can have it")]
    CommTooLong(String),
    #[error("task name must not be empty")]
    CommEmpty,
    #[error("cgroup `{0}` does not exist")]
    NoCgroup(String),
    #[error(
        "`{0}` is not a cgroup v2 directory (give a directory under the cgroup2 mount, e.g. /sys/fs/cgroup/system.slice)"
    )]
    NotCgroup2(String),
    #[error("too many {what}: at most {max}")]
    TooMany { what: &'static str, max: u32 },
}

/// Parses `0-3,7` into sorted, distinct CPU numbers.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, FilterError> {
    let bad = || FilterError::CpuList(s.to_owned());
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part, part),
        };
        let lo: usize = lo.parse().map_err(|_| bad())?;
        let hi: usize = hi.parse().map_err(|_| bad())?;
        if lo > hi || hi >= MAX_CPUS as usize {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// A cgroup v2 to trace, with everything below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupTarget {
    /// The kernel's id of the cgroup: its inode number in cgroupfs.
    pub id: u64,
    /// Its depth below the hierarchy's root (the root is 0).
    pub level: u32,
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Finds the cgroup v2 directory `path` names: as given, or relative to the
/// cgroup2 mount.
pub fn resolve_cgroup(path: &str) -> Result<CgroupTarget, FilterError> {
    let mounts = cgroup2_mounts();
    let given = Path::new(path);
    let candidates: Vec<PathBuf> = if given.is_absolute() {
        vec![given.to_owned()]
    } else {
        std::iter::once(given.to_owned())
            .chain(mounts.iter().map(|(mount, _)| mount.join(given)))
            .collect()
    };
    let dir = candidates
        .iter()
        .find_map(|c| c.canonicalize().ok().filter(|c| c.is_dir()))
        .ok_or_else(|| FilterError::NoCgroup(path.to_owned()))?;
    let not_v2 = || FilterError::NotCgroup2(path.to_owned());
    if !is_cgroup2(&dir) {
        return Err(not_v2());
    }
    let (mount, root) = mounts
        .iter()
        .filter(|(mount, _)| dir.starts_with(mount))
        .max_by_key(|(mount, _)| mount.as_os_str().len())
        .ok_or_else(not_v2)?;
    let below_mount = dir.strip_prefix(mount).map_err(|_| not_v2())?.components().count();
    let root_depth = Path::new(root)
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .count();
    let id = fs::metadata(&dir)
        .map_err(|_| FilterError::NoCgroup(path.to_owned()))?
        .ino();
    Ok(CgroupTarget {
        id,
        level: (root_depth + below_mount) as u32,
    })
}

fn is_cgroup2(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statfs is valid; statfs fills it from a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC }
}

/// cgroup2 mounts: (mount point, root of the hierarchy it shows).
fn cgroup2_mounts() -> Vec<(PathBuf, String)> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            if post.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let fields: Vec<&str> = pre.split_whitespace().collect();
            Some((PathBuf::from(fields.get(4)?), (*fields.get(3)?).to_owned()))
        })
        .collect()
}

/// The filters, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub tgids: Vec<u32>,
    pub tids: Vec<u32>,
    /// NUL-padded task name.
    pub comm: Option<[u8; 16]>,
    pub cpus: Option<Vec<usize>>,
    /// Tasks in this cgroup v2 or below it.
    pub cgroup: Option<CgroupTarget>,
    /// Trace the process tree of a command started by tracer (its pid is
    /// added once it exists).
    pub command: bool,
}

impl Filter {
    /// The kernel programs' `FILTER` bits.
    pub fn bits(&self) -> u32 {
        let mut bits = 0;
        if !self.tgids.is_empty() || self.command {
            bits |= FILTER_TGID;
        }
        if !self.tids.is_empty() {
            bits |= FILTER_TID;
        }
        if self.comm.is_some() {
            bits |= FILTER_COMM;
        }
        if self.cpus.is_some() {
            bits |= FILTER_CPU;
        }
        if self.cgroup.is_some() {
            bits |= FILTER_CGROUP;
        }
        bits
    }

    /// Builds and checks the filters against this machine.
    pub fn new(
        tgids: &[u32],
        tids: &[u32],
        comm: Option<&str>,
        cpus: Option<&[usize]>,
        cgroup: Option<&str>,
        command: bool,
    ) -> Result<Self, FilterError> {
        if tgids.len() > MAX_TGIDS as usize / 2 {
            return Err(FilterError::TooMany {
                what: "processes",
                max: MAX_TGIDS / 2,
            });
        }
        if tids.len() > MAX_TIDS as usize {
            return Err(FilterError::TooMany {
                what: "threads",
                max: MAX_TIDS,
            });
        }
        for &pid in tgids {
            match tgid_of(pid) {
                None => return Err(FilterError::NoProcess(pid)),
                Some(tgid) if tgid != pid => return Err(FilterError::NotAProcess(pid, tgid)),
                Some(_) => {}
            }
        }
        for &tid in tids {
            if tgid_of(tid).is_none() {
                return Err(FilterError::NoThread(tid));
            }
        }
        let comm = comm.map(comm_bytes).transpose()?;
        if let Some(cpus) = cpus {
            let online = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
            let online_list = parse_cpu_list(online.trim()).unwrap_or_default();
            if let Some(&cpu) = cpus.iter().find(|c| !online_list.contains(c)) {
                return Err(FilterError::NoCpu {
                    cpu,
                    online: online.trim().to_owned(),
                });
            }
        }
        Ok(Self {
            tgids: tgids.to_vec(),
            tids: tids.to_vec(),
            comm,
            cpus: cpus.map(<[usize]>::to_vec),
            cgroup: cgroup.map(resolve_cgroup).transpose()?,
            command,
        })
    }
}

/// The tgid of a task, from /proc; `None` if there is no such task.
fn tgid_of(tid: u32) -> Option<u32> {
    if tid == 0 {
        return None;
    }
    let status = fs::read_to_string(Path::new("/proc").join(tid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

fn comm_bytes(name: &str) -> Result<[u8; 16], FilterError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err(FilterError::CommEmpty);
    }
    if bytes.len() > 15 {
        return Err(FilterError::CommTooLong(name.to_owned()));
    }
    let mut comm = [0u8; 16];
    comm[..bytes.len()].copy_from_slice(bytes);
    Ok(comm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,7"), Ok(vec![0, 1, 2, 3, 7]));
        assert_eq!(parse_cpu_list("1"), Ok(vec![1]));
        assert_eq!(parse_cpu_list("3,1,1-2"), Ok(vec![1, 2, 3]));
        for bad in ["", "a", "3-1", "1-", "-1", "1,,2", "99999", "0-99999999999999999999"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checks_against_the_machine() {
        let me = std::process::id();
        assert!(Filter::new(&[me], &[], None, None, None, false).is_ok());
        assert_eq!(
            Filter::new(&[me], &[], None, None, None, false).unwrap().bits(),
            FILTER_TGID
        );
        // pid_max is at most 2^22: this pid cannot exist.
        assert_eq!(
            Filter::new(&[u32::MAX - 1], &[], None, None, None, false),
            Err(FilterError::NoProcess(u32::MAX - 1))
        );
        assert_eq!(
            Filter::new(&[], &[u32::MAX - 1], None, None, None, false),
            Err(FilterError::NoThread(u32::MAX - 1))
        );
        assert!(matches!(
            Filter::new(&[], &[], Some("a-name-that-is-too-long"), None, None, false),
            Err(FilterError::CommTooLong(_))
        ));
        let f = Filter::new(&[], &[], Some("bash"), Some(&[0]), None, false).unwrap();
        assert_eq!(f.comm.unwrap()[..5], *b"bash\0");
        assert_eq!(f.bits(), FILTER_COMM | FILTER_CPU);
        assert!(matches!(
            Filter::new(&[], &[], None, Some(&[4095]), None, false),
            Err(FilterError::NoCpu { cpu: 4095, .. })
        ));
    }

    #[test]
    fn a_thread_is_not_a_process() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        let me = std::process::id();
        assert_eq!(
            Filter::new(&[tid], &[], None, None, None, false),
            Err(FilterError::NotAProcess(tid, me))
        );
        assert!(Filter::new(&[], &[tid], None, None, None, false).is_ok());
        done_tx.send(()).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn cgroups() {
        assert!(matches!(
            resolve_cgroup("/nonexistent/cgroup"),
            Err(FilterError::NoCgroup(_))
        ));
        assert!(matches!(resolve_cgroup("/tmp"), Err(FilterError::NotCgroup2(_))));
        if let Some((mount, root)) = cgroup2_mounts().into_iter().next() {
            let top = resolve_cgroup(mount.to_str().unwrap()).unwrap();
            assert_eq!(top.level as usize, Path::new(&root).components().count() - 1);
        }
    }

    proptest::proptest! {
        #[test]
        fn cpu_list_never_panics(s in "\\PC{0,40}") {
            let _ = parse_cpu_list(&s);
        }

        #[test]
        fn cgroup_paths_never_panic(s in "[/a-z.\\x00-\\x1f\\PC]{0,40}") {
            let _ = resolve_cgroup(&s);
        }
    }
}
