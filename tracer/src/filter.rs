//! What to trace: processes, threads, a task name, CPUs. Parsed and checked
//! against the running system before anything is attached; evaluated in the
//! kernel.

use std::{fs, path::Path};

use tracer_common::maps::{FILTER_COMM, FILTER_CPU, FILTER_TGID, FILTER_TID, MAX_CPUS, MAX_TGIDS, MAX_TIDS};

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

/// The filters, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub tgids: Vec<u32>,
    pub tids: Vec<u32>,
    /// NUL-padded task name.
    pub comm: Option<[u8; 16]>,
    pub cpus: Option<Vec<usize>>,
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
        bits
    }

    /// Builds and checks the filters against this machine.
    pub fn new(
        tgids: &[u32],
        tids: &[u32],
        comm: Option<&str>,
        cpus: Option<&[usize]>,
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
        assert!(Filter::new(&[me], &[], None, None, false).is_ok());
        assert_eq!(Filter::new(&[me], &[], None, None, false).unwrap().bits(), FILTER_TGID);
        // pid_max is at most 2^22: this pid cannot exist.
        assert_eq!(
            Filter::new(&[u32::MAX - 1], &[], None, None, false),
            Err(FilterError::NoProcess(u32::MAX - 1))
        );
        assert_eq!(
            Filter::new(&[], &[u32::MAX - 1], None, None, false),
            Err(FilterError::NoThread(u32::MAX - 1))
        );
        assert!(matches!(
            Filter::new(&[], &[], Some("a-name-that-is-too-long"), None, false),
            Err(FilterError::CommTooLong(_))
        ));
        let f = Filter::new(&[], &[], Some("bash"), Some(&[0]), false).unwrap();
        assert_eq!(f.comm.unwrap()[..5], *b"bash\0");
        assert_eq!(f.bits(), FILTER_COMM | FILTER_CPU);
        assert!(matches!(
            Filter::new(&[], &[], None, Some(&[4095]), false),
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
            Filter::new(&[tid], &[], None, None, false),
            Err(FilterError::NotAProcess(tid, me))
        );
        assert!(Filter::new(&[], &[tid], None, None, false).is_ok());
        done_tx.send(()).unwrap();
        t.join().unwrap();
    }

    proptest::proptest! {
        #[test]
        fn cpu_list_never_panics(s in "\\PC{0,40}") {
            let _ = parse_cpu_list(&s);
        }
    }
}
