//! Workloads with known ground truth: two tasks bouncing a byte over a pair
//! of pipes, pinned to one CPU so that every round trip forces two switches.
//! Used by the live tests (and the benchmarks) to check the tracer against
//! the kernel's own accounting.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    time::{Duration, Instant},
};

/// Which two tasks bounce the byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingPong {
    /// Two threads of this process: thread switches.
    Threads,
    /// A thread of this process and a forked child: process switches.
    Processes,
}

/// What the workload did, by the kernel's own accounting.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    pub round_trips: u64,
    pub elapsed: Duration,
    /// Voluntary switches of both tasks during the loop (`ru_nvcsw`).
    pub voluntary: u64,
    /// Involuntary switches of both tasks during the loop (`ru_nivcsw`).
    pub involuntary: u64,
    /// Thread ids (for `Processes`, the child's pid is the second).
    pub tids: [i32; 2],
}

impl Outcome {
    /// Every switch out of either task, as the kernel counted them.
    pub fn switches(&self) -> u64 {
        self.voluntary + self.involuntary
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Pins the calling thread to `cpu`. Async-signal-safe (a forked child calls it).
fn pin(cpu: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET on a valid set; out-of-range CPUs are ignored by libc.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `(nvcsw, nivcsw)` of the calling thread or process.
fn csw(who: libc::c_int) -> (u64, u64) {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    unsafe { libc::getrusage(who, &mut ru) };
    (ru.ru_nvcsw as u64, ru.ru_nivcsw as u64)
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// One byte each way, `n` times. `first` writes first. Async-signal-safe.
fn bounce(rx: RawFd, tx: RawFd, n: u64, first: bool) -> io::Result<()> {
    let mut byte = [0u8; 1];
    for _ in 0..n {
        if first {
            write_byte(tx, &byte)?;
            read_byte(rx, &mut byte)?;
        } else {
            read_byte(rx, &mut byte)?;
            write_byte(tx, &byte)?;
        }
    }
    Ok(())
}

fn read_byte(fd: RawFd, buf: &mut [u8; 1]) -> io::Result<()> {
    loop {
        // SAFETY: `buf` is one writable byte.
        match unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 1) } {
            1 => return Ok(()),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

fn write_byte(fd: RawFd, buf: &[u8; 1]) -> io::Result<()> {
    loop {
        // SAFETY: `buf` is one readable byte.
        match unsafe { libc::write(fd, buf.as_ptr().cast(), 1) } {
            1 => return Ok(()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// The side that runs in a thread of this process: pins, waits for the go,
/// bounces, and returns its own switch counts over the loop.
fn thread_side(cpu: usize, rx: RawFd, tx: RawFd, n: u64, first: bool) -> io::Result<(i32, (u64, u64), Duration)> {
    pin(cpu)?;
    let before = csw(libc::RUSAGE_THREAD);
    let start = Instant::now();
    bounce(rx, tx, n, first)?;
    let elapsed = start.elapsed();
    let after = csw(libc::RUSAGE_THREAD);
    Ok((gettid(), (after.0 - before.0, after.1 - before.1), elapsed))
}

/// Runs the ping-pong for `round_trips` on `cpu` and returns the kernel's
/// accounting of it.
pub fn run(kind: PingPong, cpu: usize, round_trips: u64) -> io::Result<Outcome> {
    let (a_rx, b_tx) = pipe()?; // b -> a
    let (b_rx, a_tx) = pipe()?; // a -> b
    match kind {
        PingPong::Threads => {
            // Both sides in threads of their own, so the caller's affinity is untouched.
            let (a, b) = std::thread::scope(|s| {
                let b = s.spawn(|| thread_side(cpu, b_rx.as_raw_fd(), b_tx.as_raw_fd(), round_trips, false));
                let a = s.spawn(|| thread_side(cpu, a_rx.as_raw_fd(), a_tx.as_raw_fd(), round_trips, true));
                (a.join(), b.join())
            });
            let panicked = |_| io::Error::other("ping-pong thread panicked");
            let (a, b) = (a.map_err(panicked)??, b.map_err(panicked)??);
            Ok(Outcome {
                round_trips,
                elapsed: a.2,
                voluntary: a.1.0 + b.1.0,
                involuntary: a.1.1 + b.1.1,
                tids: [a.0, b.0],
            })
        }
        PingPong::Processes => {
            let (report_rx, report_tx) = pipe()?;
            // SAFETY: the child only makes async-signal-safe calls (sched_setaffinity,
            // read, write, getrusage, _exit) on descriptors prepared before the fork.
            let child = unsafe { libc::fork() };
            if child < 0 {
                return Err(io::Error::last_os_error());
            }
            if child == 0 {
                let code = child_side(
                    cpu,
                    b_rx.as_raw_fd(),
                    b_tx.as_raw_fd(),
                    report_tx.as_raw_fd(),
                    round_trips,
                );
                // SAFETY: ends the child without running the parent's atexit handlers or destructors.
                unsafe { libc::_exit(code) };
            }
            drop((b_rx, b_tx, report_tx));
            let a = std::thread::scope(|s| {
                s.spawn(|| thread_side(cpu, a_rx.as_raw_fd(), a_tx.as_raw_fd(), round_trips, true))
                    .join()
                    .map_err(|_| io::Error::other("ping-pong thread panicked"))
            });
            let mut report = [0u8; 16];
            let got = read_exact(report_rx.as_raw_fd(), &mut report);
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            let a = a??;
            got?;
            if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                return Err(io::Error::other(format!("ping-pong child failed (status {status:#x})")));
            }
            let nv = u64::from_ne_bytes(report[..8].try_into().unwrap_or_default());
            let niv = u64::from_ne_bytes(report[8..].try_into().unwrap_or_default());
            Ok(Outcome {
                round_trips,
                elapsed: a.2,
                voluntary: a.1.0 + nv,
                involuntary: a.1.1 + niv,
                tids: [a.0, child],
            })
        }
    }
}

/// The forked child's side; returns its exit code. Async-signal-safe.
fn child_side(cpu: usize, rx: RawFd, tx: RawFd, report: RawFd, n: u64) -> i32 {
    if pin(cpu).is_err() {
        return 2;
    }
    let before = csw(libc::RUSAGE_SELF);
    if bounce(rx, tx, n, false).is_err() {
        return 3;
    }
    let after = csw(libc::RUSAGE_SELF);
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&(after.0 - before.0).to_ne_bytes());
    buf[8..].copy_from_slice(&(after.1 - before.1).to_ne_bytes());
    // SAFETY: `buf` is 16 readable bytes.
    if unsafe { libc::write(report, buf.as_ptr().cast(), buf.len()) } != 16 {
        return 4;
    }
    0
}

fn read_exact(fd: RawFd, buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the range is inside `buf`.
        let n = unsafe { libc::read(fd, buf[done..].as_mut_ptr().cast(), buf.len() - done) };
        match n {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            n => done += n as usize,
        }
    }
    Ok(())
}
