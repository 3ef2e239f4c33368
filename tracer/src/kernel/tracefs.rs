//! What the classic-tracepoint probe needs from tracefs and /proc: field
//! offsets from each event's `format`, and which process every existing
//! thread belongs to.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

use tracer_common::{class::PF_KTHREAD, tracepoint::TracepointLayout};

#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error(
        "tracefs is not mounted and could not be mounted at /sys/kernel/tracing ({0}); the tracepoint probe needs it: mount -t tracefs nodev /sys/kernel/tracing"
    )]
    NotMounted(String),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{event}: no field `{field}` in its format")]
    NoField { event: &'static str, field: &'static str },
    #[error("sched_switch's format does not say how it marks a preempted task")]
    NoPreemptBit,
}

/// The tracefs mount, mounting it at /sys/kernel/tracing if it is not yet.
pub fn mount_point() -> Result<PathBuf, TracefsError> {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    if let Some(p) = mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, point, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "tracefs").then(|| PathBuf::from(point))
    }) {
        return Ok(p);
    }
    let target = Path::new("/sys/kernel/tracing");
    let c = |s: &str| std::ffi::CString::new(s).unwrap_or_default();
    let (src, dst, fstype) = (c("nodev"), c("/sys/kernel/tracing"), c("tracefs"));
    // SAFETY: NUL-terminated strings; no data argument.
    let r = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if r != 0 {
        return Err(TracefsError::NotMounted(std::io::Error::last_os_error().to_string()));
    }
    log::info!("mounted tracefs at {}", target.display());
    Ok(target.to_owned())
}

/// Field name -> byte offset, from an event's format file.
fn fields(format: &str) -> HashMap<String, u32> {
    format
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let decl = l.strip_prefix("field:")?.split(';').next()?;
            let offset = l
                .split(';')
                .find_map(|p| p.trim().strip_prefix("offset:"))?
                .trim()
                .parse()
                .ok()?;
            // "char prev_comm[16]" -> "prev_comm"; "pid_t prev_pid" -> "prev_pid".
            let name = decl.split_whitespace().last()?.split('[').next()?;
            Some((name.to_owned(), offset))
        })
        .collect()
}

/// `TASK_REPORT_MAX`, from sched_switch's print format: the bit tested to
/// print "+" after prev's state, `((OR of the state bits) + 1) << 1`.
fn preempted_bit(format: &str) -> Option<u32> {
    let plus = format.rfind("? \"+\"")?;
    let start = format[..plus].rfind("REC->prev_state &")?;
    let expr = &format[start..plus];
    let mut bits = 0u32;
    for token in expr.split(|c: char| !c.is_ascii_alphanumeric()) {
        if let Some(hex) = token.strip_prefix("0x") {
            bits |= u32::from_str_radix(hex, 16).ok()?;
        }
    }
    (bits != 0).then(|| (bits + 1) << 1)
}

fn read_format(tracefs: &Path, category: &str, event: &str) -> Result<String, TracefsError> {
    let path = tracefs.join("events").join(category).join(event).join("format");
    fs::read_to_string(&path).map_err(|source| TracefsError::Read { path, source })
}

/// Reads the layout of the events the tracepoint probe uses.
pub fn layout(tracefs: &Path, kthreadd: u32) -> Result<TracepointLayout, TracefsError> {
    let switch = read_format(tracefs, "sched", "sched_switch")?;
    let newtask = read_format(tracefs, "task", "task_newtask")?;
    let free = read_format(tracefs, "sched", "sched_process_free")?;
    let waking = read_format(tracefs, "sched", "sched_waking")?;
    let wakeup_new = read_format(tracefs, "sched", "sched_wakeup_new")?;
    let field = |fields: &HashMap<String, u32>, event: &'static str, field: &'static str| {
        fields.get(field).copied().ok_or(TracefsError::NoField { event, field })
    };
    let (s, n, f) = (fields(&switch), fields(&newtask), fields(&free));
    let (w, wn) = (fields(&waking), fields(&wakeup_new));
    let wakeup_pid = field(&w, "sched_waking", "pid")?;
    // Both wakeup programs read `pid` at one offset: the events share a class.
    if field(&wn, "sched_wakeup_new", "pid")? != wakeup_pid {
        return Err(TracefsError::NoField {
            event: "sched_wakeup_new",
            field: "pid (at the offset sched_waking has it)",
        });
    }
    Ok(TracepointLayout {
        switch_prev_comm: field(&s, "sched_switch", "prev_comm")?,
        switch_prev_pid: field(&s, "sched_switch", "prev_pid")?,
        switch_prev_state: field(&s, "sched_switch", "prev_state")?,
        switch_next_comm: field(&s, "sched_switch", "next_comm")?,
        switch_next_pid: field(&s, "sched_switch", "next_pid")?,
        switch_preempted_bit: preempted_bit(&switch).ok_or(TracefsError::NoPreemptBit)?,
        newtask_pid: field(&n, "task_newtask", "pid")?,
        newtask_clone_flags: field(&n, "task_newtask", "clone_flags")?,
        free_pid: field(&f, "sched_process_free", "pid")?,
        kthreadd,
        wakeup_pid,
    })
}

/// One existing thread, from /proc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    pub tid: u32,
    pub tgid: u32,
    pub kthread: bool,
}

/// `(comm, ppid, flags)` from a /proc stat line (the name may hold spaces
/// and parentheses: it ends at the last ')').
fn parse_stat(stat: &str) -> Option<(&str, u32, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = &stat[open + 1..close];
    let mut rest = stat[close + 1..].split_whitespace();
    // state, ppid, pgrp, session, tty_nr, tpgid, flags
    let ppid = rest.nth(1)?.parse().ok()?;
    let flags = rest.nth(4)?.parse().ok()?;
    Some((comm, ppid, flags))
}

/// Every thread alive now, and the pid of kthreadd (0 if not found).
pub fn threads() -> (Vec<ThreadInfo>, u32) {
    let mut out = Vec::new();
    let mut kthreadd = 0;
    let Ok(procs) = fs::read_dir("/proc") else {
        return (out, 0);
    };
    for p in procs.filter_map(Result::ok) {
        let Some(tgid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(tasks) = fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.filter_map(Result::ok) {
            let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(t.path().join("stat")) else {
                continue;
            };
            let Some((comm, ppid, flags)) = parse_stat(&stat) else {
                continue;
            };
            if tid == tgid && ppid == 0 && comm == "kthreadd" {
                kthreadd = tgid;
            }
            out.push(ThreadInfo {
                tid,
                tgid,
                kthread: flags & PF_KTHREAD != 0,
            });
        }
    }
    (out, kthreadd)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWITCH: &str = r#"name: sched_switch
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:char prev_comm[16];	offset:8;	size:16;	signed:0;
	field:pid_t prev_pid;	offset:24;	size:4;	signed:1;
	field:long prev_state;	offset:32;	size:8;	signed:1;
	field:char next_comm[16];	offset:40;	size:16;	signed:0;
	field:pid_t next_pid;	offset:56;	size:4;	signed:1;

print fmt: "prev_state=%s%s", (REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1)) ? __print_flags(REC->prev_state & 0x7f, "|", { 0x00000001, "S" }) : "R", REC->prev_state & (((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) ? "+" : "", REC->next_comm"#;

    #[test]
    fn reads_offsets_and_the_preempted_bit() {
        let f = fields(SWITCH);
        assert_eq!(f["prev_comm"], 8);
        assert_eq!(f["prev_pid"], 24);
        assert_eq!(f["prev_state"], 32);
        assert_eq!(f["next_pid"], 56);
        assert_eq!(preempted_bit(SWITCH), Some(0x100));
        assert_eq!(preempted_bit("print fmt: \"%d\", REC->x"), None);
    }

    #[test]
    fn parses_proc_stat_with_odd_names() {
        let stat = "42 (we ird) name)) S 2 0 0 0 -1 2129984 0 0";
        assert_eq!(parse_stat(stat), Some(("we ird) name)", 2, 2_129_984)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn sees_this_process() {
        let (threads, _) = threads();
        let me = std::process::id();
        assert!(threads.iter().any(|t| t.tgid == me && t.tid == me && !t.kthread));
    }
}
