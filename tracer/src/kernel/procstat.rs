//! The kernel's own count of context switches: the `ctxt` line of
//! /proc/stat, the sum over CPUs of `rq->nr_switches`, which `__schedule()`
//! increments exactly when it switches to another task (prev != next), the
//! same condition under which it fires the sched_switch tracepoint. There
//! is no per-CPU figure short of a perf software counter, which would put a
//! hook on every switch: reports show the host-wide one.

use std::{fs, io};

#[derive(Debug, thiserror::Error)]
pub enum ProcStatError {
    #[error("cannot read /proc/stat: {0}")]
    Read(#[from] io::Error),
    #[error("/proc/stat has no `ctxt` line with a count")]
    NoCtxt,
}

/// Context switches since boot, all CPUs.
pub fn context_switches() -> Result<u64, ProcStatError> {
    parse_ctxt(&fs::read_to_string("/proc/stat")?)
}

/// The count on the `ctxt` line of a /proc/stat text.
pub fn parse_ctxt(stat: &str) -> Result<u64, ProcStatError> {
    stat.lines()
        .find_map(|l| l.strip_prefix("ctxt "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(ProcStatError::NoCtxt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ctxt_line() {
        let stat = "cpu  1 2 3 4 5 6 7 0 0 0\ncpu0 1 2 3 4 5 6 7 0 0 0\nintr 12 3\nctxt 987654321\nbtime 17\n";
        assert_eq!(parse_ctxt(stat).unwrap(), 987_654_321);
    }

    #[test]
    fn a_missing_or_bad_line_is_an_error() {
        for stat in ["", "cpu 1 2\nbtime 3\n", "ctxt\n", "ctxt x\n", "ctxts 5\n", "ctxt -1\n"] {
            assert!(matches!(parse_ctxt(stat), Err(ProcStatError::NoCtxt)), "{stat:?}");
        }
    }

    #[test]
    fn this_machine_has_one() {
        if std::path::Path::new("/proc/stat").exists() {
            assert!(context_switches().unwrap() > 0);
        }
    }
}
