//! One side of a ping-pong: its end of the channel, its loop, and what it
//! reports. A side may run in a forked child, so all of it is
//! async-signal-safe.

use std::{
    io,
    os::fd::{AsRawFd as _, OwnedFd, RawFd},
    sync::atomic::{AtomicU32, Ordering},
};

use super::{
    accounting::{csw, schedstat},
    affinity::pin,
    shared::{Shared, touch},
    spec::Spec,
};

/// What one side reports: `(nvcsw, nivcsw)` over its loop, its loop time, and
/// whether it ended on the requested CPU.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub(super) struct SideResult {
    pub(super) voluntary: u64,
    pub(super) involuntary: u64,
    pub(super) elapsed_ns: u64,
    pub(super) on_cpu: u64,
    pub(super) run_ns: u64,
    pub(super) wait_ns: u64,
    pub(super) tid: u64,
}

/// One side's end of the channel. Async-signal-safe.
#[derive(Clone, Copy)]
pub(super) enum End<'a> {
    Pipe {
        rx: RawFd,
        tx: RawFd,
    },
    /// The token is this side's when the word equals `mine`.
    Futex {
        word: &'a AtomicU32,
        mine: u32,
    },
}

impl End<'_> {
    fn send(self) -> io::Result<()> {
        match self {
            End::Pipe { tx, .. } => loop {
                // SAFETY: one readable byte.
                match unsafe { libc::write(tx, [0u8].as_ptr().cast(), 1) } {
                    1 => return Ok(()),
                    _ => retry_on_eintr()?,
                }
            },
            End::Futex { word, mine } => {
                word.store(mine ^ 1, Ordering::Release);
                // SAFETY: FUTEX_WAKE on a valid, aligned u32 in shared memory.
                unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1, 0, 0, 0) };
                Ok(())
            }
        }
    }

    fn recv(self) -> io::Result<()> {
        match self {
            End::Pipe { rx, .. } => loop {
                let mut byte = [0u8];
                // SAFETY: one writable byte.
                match unsafe { libc::read(rx, byte.as_mut_ptr().cast(), 1) } {
                    1 => return Ok(()),
                    0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                    _ => retry_on_eintr()?,
                }
            },
            End::Futex { word, mine } => {
                loop {
                    let now = word.load(Ordering::Acquire);
                    if now == mine {
                        return Ok(());
                    }
                    // SAFETY: FUTEX_WAIT on a valid, aligned u32; returns at
                    // once if the word no longer holds `now`.
                    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, now, 0, 0, 0) };
                }
            }
        }
    }
}

fn retry_on_eintr() -> io::Result<()> {
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::Interrupted {
        Ok(())
    } else {
        Err(e)
    }
}

/// One side's loop. `first` starts each round trip. Async-signal-safe.
pub(super) fn side(
    spec: &Spec,
    end: End<'_>,
    ws: Option<&Shared>,
    first: bool,
    who: libc::c_int,
) -> io::Result<SideResult> {
    pin(spec.cpu)?;
    touch(ws); // Fault the working set in before measuring.
    let before = csw(who);
    let sched_before = schedstat();
    let start = crate::kernel::sys::monotonic_ns();
    for _ in 0..spec.round_trips {
        if first {
            touch(ws);
            end.send()?;
            end.recv()?;
        } else {
            end.recv()?;
            touch(ws);
            end.send()?;
        }
    }
    let elapsed_ns = crate::kernel::sys::monotonic_ns() - start;
    let sched_after = schedstat();
    let after = csw(who);
    // SAFETY: sched_getcpu has no preconditions.
    let on_cpu = u64::from(unsafe { libc::sched_getcpu() } == spec.cpu as i32);
    Ok(SideResult {
        voluntary: after.0 - before.0,
        involuntary: after.1 - before.1,
        elapsed_ns,
        on_cpu,
        run_ns: sched_after.0.saturating_sub(sched_before.0),
        wait_ns: sched_after.1.saturating_sub(sched_before.1),
        // SAFETY: gettid has no preconditions and is async-signal-safe.
        tid: unsafe { libc::syscall(libc::SYS_gettid) } as u64,
    })
}

/// A side running in a forked child, which writes its result into a pipe.
pub(super) struct ChildSide {
    pid: libc::pid_t,
    report: OwnedFd,
}

/// Forks a child that runs one side (`side(.., false, RUSAGE_SELF)`) and
/// writes its result into a pipe; the child exits 3 if the side failed, 4
/// if the result could not be written.
pub(super) fn fork_side(spec: &Spec, end: End<'_>, ws: Option<&Shared>) -> io::Result<ChildSide> {
    let (report, report_tx) = crate::kernel::sys::pipe()?;
    let pid = super::fork::fork_child(|| {
        let code = match side(spec, end, ws, false, libc::RUSAGE_SELF) {
            Ok(result) => {
                let len = size_of::<SideResult>();
                // SAFETY: `result` is a plain repr(C) struct of `len` bytes.
                let written = unsafe { libc::write(report_tx.as_raw_fd(), (&raw const result).cast(), len) };
                if written == len as isize { 0 } else { 4 }
            }
            Err(_) => 3,
        };
        if code != 0 {
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
    })?;
    Ok(ChildSide {
        pid: pid as libc::pid_t,
        report,
    })
}

impl ChildSide {
    /// Reads the child's result and reaps it.
    pub(super) fn finish(self) -> io::Result<SideResult> {
        let result = read_side_result(self.report.as_raw_fd());
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            return Err(io::Error::other(format!("workload child failed (status {status:#x})")));
        }
        result
    }
}

pub(super) fn read_side_result(fd: RawFd) -> io::Result<SideResult> {
    let mut result = SideResult::default();
    let len = size_of::<SideResult>();
    let mut done = 0;
    while done < len {
        // SAFETY: writes stay inside `result`, a plain repr(C) struct of `len` bytes.
        let n = unsafe { libc::read(fd, (&raw mut result).cast::<u8>().add(done).cast(), len - done) };
        match n {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n if n < 0 => retry_on_eintr()?,
            n => done += n as usize,
        }
    }
    Ok(result)
}
