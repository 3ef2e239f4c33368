//! `perf sched timehist` as a second opinion on tracer's latencies: record
//! with `perf sched record -k mono -a` (on CLOCK_MONOTONIC, the clock tracer
//! reads), print with `perf sched timehist -n --state`,
//! parse it, and turn its rows into samples per (metric, class) for a set of
//! processes, each in the class tracer gives it.
//!
//! What a timehist row is (perf 6.1, `builtin-sched.c`, checked on this
//! kernel's data): one row per `sched_switch`, for the task leaving (`prev`);
//! `next:` is the task coming in. With `tprev` the time of the previous
//! `sched_switch` on the same CPU (the row's task switched in then):
//! - run time = time - tprev: the slice; tracer's `oncpu_ns`, in the class of
//!   this row's switch (task, next).
//! - wait time = tprev - the task's last switch-out (on any CPU), whatever its
//!   state was: the whole time off the CPU, sch delay included; tracer's
//!   `offcpu_ns`, in the class of the switch at tprev (the previous row's
//!   task, this task). 0 for a task's first row (no switch-out seen): left
//!   out, as tracer has no sample there either.
//! - sch delay = tprev - ready_to_run, which perf sets at `sched_waking`
//!   (`sched_wakeup` where there is no waking event) or `sched_wakeup_new`,
//!   and resets to 0 at every switch-out, also a preempted one: perf 6.1
//!   prints sch delay 0 after a switch-out in state R (seen here: a compiler
//!   thread preempted for 2.255 ms shows wait 2.255, sch delay 0.000). So
//!   tracer's `runq_latency_ns` is perf's sch delay after a sleep, and perf's
//!   wait time after a preemption (state R or R+), when all of it was spent
//!   runnable.
//!
//! perf prints milliseconds with three decimals, truncated (`nsecs /
//! NSEC_PER_USEC`): each value is up to 1 µs below the real one.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tracer_common::Class;

use crate::snapshot::metrics::Metric;

#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    #[error("cannot run perf ({0}): install it (Debian: apt-get install linux-perf)")]
    Spawn(#[source] io::Error),
    #[error("{what} failed ({status}): {stderr}")]
    Failed {
        what: &'static str,
        status: String,
        stderr: String,
    },
    #[error("perf sched record did not start writing {0} within 10 s")]
    NotStarted(PathBuf),
    #[error("perf sched timehist, line {line_no}: cannot parse `{line}`")]
    Parse { line_no: usize, line: String },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// One timehist row: `task` left CPU `cpu` at `time_ns`, `next` came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub time_ns: u64,
    pub cpu: u32,
    pub comm: String,
    /// Thread id; 0 for the idle task, -1 where perf lost track of an
    /// exited thread.
    pub tid: i64,
    /// Process id (perf prints `comm[tid]` when it equals the tid).
    pub pid: i64,
    pub wait_ns: u64,
    pub delay_ns: u64,
    pub run_ns: u64,
    /// The task's state at this switch-out: R, R+, S, D, ...
    pub state: String,
    pub next_tid: i64,
}

/// A parsed `perf sched timehist -n --state`.
#[derive(Debug, Default)]
pub struct Timehist {
    pub rows: Vec<Row>,
    /// Events perf reported lost ("lost N events on cpu C" rows).
    pub lost: u64,
}

/// `msec.usec` as ns (perf's own truncation to whole µs stays).
fn msec(s: &str) -> Option<u64> {
    let (ms, us) = s.split_once('.')?;
    (us.len() == 3).then_some(())?;
    Some(ms.parse::<u64>().ok()? * 1_000_000 + us.parse::<u64>().ok()? * 1_000)
}

/// `comm[tid]`, `comm[tid/pid]` or `<idle>`: (comm, tid, pid).
fn task(s: &str) -> Option<(String, i64, i64)> {
    let s = s.trim();
    if s == "<idle>" {
        return Some((s.into(), 0, 0));
    }
    let (comm, ids) = s.strip_suffix(']')?.rsplit_once('[')?;
    let (tid, pid) = match ids.split_once('/') {
        Some((t, p)) => (t.parse().ok()?, p.parse().ok()?),
        None => (ids.parse().ok()?, ids.parse().ok()?),
    };
    Some((comm.into(), tid, pid))
}

fn row(line: &str) -> Option<Row> {
    let (left, next) = line.split_once(" next: ")?;
    let mut fields = left.split_whitespace();
    let time = fields.next()?;
    let (secs, frac) = time.split_once('.')?;
    let time_ns =
        secs.parse::<u64>().ok()? * 1_000_000_000 + frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32);
    let cpu = fields.next()?.strip_prefix('[')?.strip_suffix(']')?.parse().ok()?;
    let rest: Vec<&str> = fields.collect();
    let [task_words @ .., wait, delay, run, state] = rest.as_slice() else {
        return None;
    };
    let (comm, tid, pid) = task(&task_words.join(" "))?;
    let (_, next_tid, _) = task(next)?;
    Some(Row {
        time_ns,
        cpu,
        comm,
        tid,
        pid,
        wait_ns: msec(wait)?,
        delay_ns: msec(delay)?,
        run_ns: msec(run)?,
        state: (*state).into(),
        next_tid,
    })
}

/// Parses the output of `perf sched timehist -n --state`.
pub fn parse(text: &str) -> Result<Timehist, PerfError> {
    let mut out = Timehist::default();
    for (i, line) in text.lines().enumerate() {
        let starts_with_time = line.split_whitespace().next().is_some_and(msec_like);
        if !starts_with_time {
            continue; // Headers, the rule under them, "Samples do not have callchains."
        }
        if let Some(row) = row(line) {
            out.rows.push(row);
        } else if let Some(n) = lost_count(line) {
            out.lost += n;
        } else {
            return Err(PerfError::Parse {
                line_no: i + 1,
                line: line.into(),
            });
        }
    }
    Ok(out)
}

fn msec_like(t: &str) -> bool {
    t.split_once('.')
        .is_some_and(|(a, b)| !a.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()))
}

/// The N of any "lost N ..." in a line (perf's timehist rows for lost
/// events, and its "Processed N events and lost M chunks!" warning).
pub fn lost_count(line: &str) -> Option<u64> {
    let (_, after) = line.split_once("lost ")?;
    after.split_whitespace().next()?.parse().ok()
}

/// Whether a thread is a kernel thread (`PF_KTHREAD` in /proc/TID/stat);
/// for one that is gone, guessed from its name.
pub fn is_kthread(tid: i64, comm: &str) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{tid}/stat")) {
        // Fields after the parenthesized name: state ppid pgrp session tty tpgid flags.
        if let Some(flags) = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(6)) {
            return flags.parse::<u64>().is_ok_and(|f| f & PF_KTHREAD != 0);
        }
    }
    const KTHREADS: [&str; 12] = [
        "kworker/",
        "ksoftirqd/",
        "migration/",
        "rcu",
        "kthreadd",
        "cpuhp/",
        "irq/",
        "jbd2/",
        "kcompactd",
        "kswapd",
        "khugepaged",
        "idle_inject/",
    ];
    KTHREADS.iter().any(|k| comm.starts_with(k))
}

/// Samples per (metric, class) of the tasks of some processes.
#[derive(Debug, Default)]
pub struct Samples {
    pub by: BTreeMap<(Metric, Class), Vec<u64>>,
    /// Switch-ins of those tasks whose previous row on the CPU does not say
    /// it switched to them: perf missed a switch on that CPU (seen on this
    /// VM: every switch out of idle on CPU 1).
    pub broken: u64,
    /// Rows (switch-outs) of those tasks.
    pub rows: u64,
}

impl Samples {
    pub fn get(&self, metric: Metric, class: Class) -> &[u64] {
        self.by.get(&(metric, class)).map_or(&[], Vec::as_slice)
    }
}

/// Turns rows into samples for the tasks whose process is in `tgids`.
pub fn samples(rows: &[Row], tgids: &BTreeSet<i64>, kthread: &dyn Fn(i64, &str) -> bool) -> Samples {
    let mut tgid_of: HashMap<i64, i64> = HashMap::new();
    let mut comm_of: HashMap<i64, &str> = HashMap::new();
    for r in rows.iter().filter(|r| r.tid > 0) {
        tgid_of.insert(r.tid, r.pid);
        comm_of.insert(r.tid, &r.comm);
    }
    let mut kthreads: HashMap<i64, bool> = HashMap::new();
    let mut is_k = |tid: i64| {
        *kthreads
            .entry(tid)
            .or_insert_with(|| kthread(tid, comm_of.get(&tid).copied().unwrap_or("")))
    };
    let tgid = |tid: i64| tgid_of.get(&tid).copied().unwrap_or(tid);
    let mut class = |a: i64, b: i64| {
        if a == 0 || b == 0 {
            Class::Idle
        } else if is_k(a) || is_k(b) {
            Class::Kernel
        } else if tgid(a) == tgid(b) {
            Class::Thread
        } else {
            Class::Process
        }
    };
    let mut out = Samples::default();
    let mut last_on_cpu: HashMap<u32, &Row> = HashMap::new();
    let mut last_state: HashMap<i64, &str> = HashMap::new();
    for r in rows {
        if tgids.contains(&r.pid) && r.tid != 0 {
            out.rows += 1;
            let oncpu = class(r.tid, r.next_tid);
            out.by.entry((Metric::Oncpu, oncpu)).or_default().push(r.run_ns);
            match last_on_cpu.get(&r.cpu) {
                Some(prev) if prev.next_tid == r.tid && r.tid > 0 => {
                    let c = class(prev.tid, r.tid);
                    let before = last_state.get(&r.tid).copied();
                    if before.is_some() {
                        out.by.entry((Metric::Offcpu, c)).or_default().push(r.wait_ns);
                    }
                    let runq = if before.is_some_and(|s| s.starts_with('R')) {
                        r.wait_ns
                    } else {
                        r.delay_ns
                    };
                    out.by.entry((Metric::Runq, c)).or_default().push(runq);
                }
                _ => out.broken += 1,
            }
            last_state.insert(r.tid, &r.state);
        }
        last_on_cpu.insert(r.cpu, r);
    }
    out
}

/// A running `perf sched record -k mono -a`, stopped with SIGINT by [`Recorder::stop`]
/// (killed if dropped first).
pub struct Recorder {
    child: Option<Child>,
    pub path: PathBuf,
    stderr: PathBuf,
}

impl Recorder {
    /// Starts recording into `path`; returns once perf has started writing it.
    pub fn start(path: &Path) -> Result<Self, PerfError> {
        let _ = std::fs::remove_file(path);
        let stderr = path.with_extension("stderr");
        let child = Command::new("perf")
            .args(["sched", "record", "-k", "mono", "-a", "-o"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()
            .map_err(PerfError::Spawn)?;
        let recorder = Self {
            child: Some(child),
            path: path.into(),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
            if Instant::now() > deadline {
                return Err(PerfError::NotStarted(path.into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The file's header comes first; the events a little after.
        std::thread::sleep(Duration::from_millis(300));
        Ok(recorder)
    }

    /// Stops perf (SIGINT, as Ctrl-C); returns its stderr.
    pub fn stop(mut self) -> Result<String, PerfError> {
        let mut child = self.child.take().expect("running");
        // SAFETY: signals our own child, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let status = child.wait()?;
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        // perf re-raises the SIGINT after writing its file.
        let interrupted = std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGINT);
        if !status.success() && !interrupted && status.code() != Some(130) {
            return Err(PerfError::Failed {
                what: "perf sched record",
                status: status.to_string(),
                stderr,
            });
        }
        Ok(stderr)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `perf sched timehist -n --state` on a recording: (stdout, stderr).
pub fn timehist(path: &Path) -> Result<(String, String), PerfError> {
    let out = Command::new("perf")
        .args(["sched", "timehist", "-n", "--state", "-i"])
        .arg(path)
        .output()
        .map_err(PerfError::Spawn)?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(PerfError::Failed {
            what: "perf sched timehist",
            status: out.status.to_string(),
            stderr,
        });
    }
    Ok((String::from_utf8_lossy(&out.stdout).into_owned(), stderr))
}

#[cfg(test)]
mod tests;
