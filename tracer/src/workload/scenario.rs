//! Workloads for the cross-check against `perf sched timehist`
//! (`tracer scenario NAME`, hidden): each pins its measured tasks to one CPU,
//! runs for a fixed time or count, and prints one JSON line with the process
//! ids of every process it made (so that perf's side can be restricted to
//! the same tasks as tracer's `-- COMMAND` tree) and its own clock of what
//! it went through.
//!
//! A helper that must stay on another CPU (the writer of the wakeup
//! scenarios) busy-waits instead of sleeping, so that CPU never goes idle
//! for it: perf on some VMs misses switches out of idle on some CPUs, and
//! only the measured CPU is checked to be free of that.
//!
//! Forked children only make async-signal-safe calls (raw syscalls on
//! memory and descriptors prepared before the fork), as in `workload`.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, OwnedFd},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use serde_json::{Value, json};

use crate::{
    kernel::sys::monotonic_ns,
    workload::{affinity::pin, fork::fork_child},
};

/// Period of the wakeup scenarios' writer.
pub const WAKE_PERIOD: Duration = Duration::from_micros(500);
/// Below this, a gap in a spinner's own clock loop is not counted as time
/// off the CPU (an interrupt, not a switch).
pub const GAP_NS: u64 = 10_000;

/// One scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// A reader on `cpu`, blocked in read(), woken every 500 µs by a writer
    /// on `other`: every wakeup lands on an idle CPU.
    WakeIdle,
    /// The same with a process spinning on `cpu`: the wakeups preempt it.
    WakePreempt,
    /// Three processes spinning on `cpu`: tick preemption among them.
    Spinners,
    /// Fork and exec /bin/true in a loop on `cpu`: new tasks.
    ForkExec,
}

/// Percentile at rank ceil(q * n) of sorted samples (0 when empty): the
/// same rank HdrHistogram's `value_at_quantile` picks.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `{"count", "p50", "p99"}` of some samples.
pub fn summary(mut samples: Vec<u64>) -> Value {
    samples.sort_unstable();
    json!({
        "count": samples.len(),
        "p50": percentile(&samples, 0.50),
        "p99": percentile(&samples, 0.99),
    })
}

/// Runs `scenario` for about `seconds` (ForkExec: `count` iterations) and
/// returns its JSON line.
pub fn run(scenario: Scenario, cpu: usize, other: usize, seconds: f64, count: u32) -> io::Result<Value> {
    pin(cpu)?;
    let run_ns = (seconds * 1e9) as u64;
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() } as u32;
    let mut line = match scenario {
        Scenario::WakeIdle => wake(other, run_ns, false)?,
        Scenario::WakePreempt => wake(other, run_ns, true)?,
        Scenario::Spinners => spinners(3, run_ns)?,
        Scenario::ForkExec => fork_exec(count)?,
    };
    let tgids = line["tgids"].as_array_mut().expect("tgids");
    tgids.insert(0, me.into());
    line["cpu"] = cpu.into();
    Ok(line)
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions and is async-signal-safe.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

fn wait_child(pid: u32) -> io::Result<()> {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is writable.
    if unsafe { libc::waitpid(pid as i32, &mut status, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(io::Error::other(format!("child {pid} failed: status {status:#x}")));
    }
    Ok(())
}

/// Spins until the monotonic clock reaches `until`. Async-signal-safe.
fn spin_until(until: u64) {
    while monotonic_ns() < until {
        std::hint::spin_loop();
    }
}

/// The wakeup scenarios: the reader (this process's thread on the
/// scenario's CPU) measures its own wakeup latency, writer's stamp to its
/// read() returning.
fn wake(other: usize, run_ns: u64, preempt: bool) -> io::Result<Value> {
    let start = monotonic_ns();
    let end = start + run_ns;
    // The spinner outlasts the writer, so every wakeup meets it.
    let spinner = preempt
        .then(|| fork_child(|| spin_until(end + 50_000_000)))
        .transpose()?;
    let (rx, tx) = crate::kernel::sys::pipe()?;
    let ready = &AtomicBool::new(false);
    let (reader, writer) = std::thread::scope(|s| {
        let reader = s.spawn(|| read_stamps(&rx, ready));
        let writer = s.spawn(move || write_stamps(tx, other, start, end, ready));
        (reader.join(), writer.join())
    });
    let panicked = |_| io::Error::other("scenario thread panicked");
    let (reader_tid, latencies) = reader.map_err(panicked)??;
    let writer_tid = writer.map_err(panicked)??;
    if let Some(pid) = spinner {
        wait_child(pid)?;
    }
    Ok(json!({
        "scenario": if preempt { "wake-preempt" } else { "wake-idle" },
        "tgids": spinner.into_iter().collect::<Vec<_>>(),
        "measured_tids": [reader_tid],
        "spinner": spinner,
        "writer_tid": writer_tid,
        "wake_ns": summary(latencies),
    }))
}

fn read_stamps(rx: &OwnedFd, ready: &AtomicBool) -> io::Result<(u32, Vec<u64>)> {
    let mut latencies = Vec::new();
    ready.store(true, Ordering::Release);
    loop {
        let mut stamp = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `stamp`.
        let n = unsafe { libc::read(rx.as_raw_fd(), stamp.as_mut_ptr().cast(), 8) };
        let now = monotonic_ns();
        match n {
            8 => latencies.push(now.saturating_sub(u64::from_ne_bytes(stamp))),
            0 => return Ok((gettid(), latencies)),
            n if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            n => return Err(io::Error::other(format!("read {n} bytes of a stamp"))),
        }
    }
}

/// Writes a stamp every [`WAKE_PERIOD`] from `other`, busy-waiting between
/// them; the write end closes (EOF for the reader) at the end.
fn write_stamps(tx: OwnedFd, other: usize, start: u64, end: u64, ready: &AtomicBool) -> io::Result<u32> {
    pin(other)?;
    while !ready.load(Ordering::Acquire) {
        std::hint::spin_loop();
    }
    let period = WAKE_PERIOD.as_nanos() as u64;
    let mut next = start + period;
    while next < end {
        spin_until(next);
        let stamp = monotonic_ns().to_ne_bytes();
        // SAFETY: writes 8 bytes from `stamp`; a pipe write of <= PIPE_BUF is atomic.
        if unsafe { libc::write(tx.as_raw_fd(), stamp.as_ptr().cast(), 8) } != 8 {
            return Err(io::Error::last_os_error());
        }
        next += period;
    }
    Ok(gettid())
}

/// `n` processes spinning on this CPU until `run_ns` is up; each counts the
/// gaps in its own clock loop (time it was off the CPU, as it saw it).
fn spinners(n: usize, run_ns: u64) -> io::Result<Value> {
    let end = monotonic_ns() + run_ns;
    let mut children = Vec::new();
    for _ in 0..n {
        let (rx, tx) = crate::kernel::sys::pipe()?;
        // Room for a gap every 20 µs, allocated before the fork.
        let mut gaps: Vec<u64> = Vec::with_capacity((run_ns / 20_000) as usize + 1);
        let pid = fork_child(|| {
            let mut last = monotonic_ns();
            while last < end {
                let now = monotonic_ns();
                if now - last > GAP_NS && gaps.len() < gaps.capacity() {
                    gaps.push(now - last);
                }
                last = now;
            }
            let bytes = gaps.len() * 8;
            // SAFETY: writes the initialized part of `gaps`; the parent reads it to EOF.
            unsafe { libc::write(tx.as_raw_fd(), gaps.as_ptr().cast(), bytes) };
        })?;
        drop(tx);
        children.push((pid, rx));
    }
    let mut gaps = Vec::new();
    for (pid, rx) in &children {
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut std::fs::File::from(rx.try_clone()?), &mut bytes)?;
        let (words, _) = bytes.as_chunks::<8>();
        gaps.extend(words.iter().map(|w| u64::from_ne_bytes(*w)));
        wait_child(*pid)?;
    }
    let pids: Vec<u32> = children.iter().map(|(pid, _)| *pid).collect();
    Ok(json!({
        "scenario": "spinners",
        "tgids": pids,
        "measured_tids": pids,
        "gap_ns": summary(gaps),
    }))
}

/// Forks and execs /bin/true `count` times, one at a time; times each from
/// fork to waitpid returning.
fn fork_exec(count: u32) -> io::Result<Value> {
    let path = CString::new("/bin/true").expect("no NUL");
    let argv = [path.as_ptr(), std::ptr::null()];
    let mut pids = Vec::new();
    let mut times = Vec::new();
    for _ in 0..count {
        let t0 = monotonic_ns();
        let pid = fork_child(|| {
            // SAFETY: a NUL-terminated path and a NULL-terminated argv, both
            // prepared before the fork.
            unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
            // SAFETY: exec failed; end the child at once.
            unsafe { libc::_exit(127) };
        })?;
        wait_child(pid)?;
        times.push(monotonic_ns() - t0);
        pids.push(pid);
    }
    Ok(json!({
        "scenario": "fork-exec",
        "tgids": pids,
        "measured_tids": pids,
        "fork_to_reaped_ns": summary(times),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_ranks() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(
            (percentile(&s, 0.5), percentile(&s, 0.99), percentile(&s, 1.0)),
            (50, 99, 100)
        );
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
