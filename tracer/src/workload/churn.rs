//! Task churn with known ground truth: short-lived threads and child
//! processes, and the kernel's count of their switches.

use std::io;

use super::{
    accounting::{csw, process_switches},
    fork::fork_child,
};

/// What a churn run did, by the kernel's own accounting.
#[derive(Clone, Debug, Default)]
pub struct Churn {
    /// All switches of this process's threads, exited ones included, as of
    /// the end (`getrusage(RUSAGE_SELF)`).
    pub self_switches: u64,
    /// All switches of the reaped children (`getrusage(RUSAGE_CHILDREN)`).
    pub children_switches: u64,
    pub threads: u32,
    pub children: Vec<i32>,
}

/// Three 1 ms sleeps: three voluntary switches. Async-signal-safe.
fn nap3() {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    };
    for _ in 0..3 {
        // SAFETY: a valid timespec; the remainder is not wanted.
        unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
    }
}

/// Starts `threads` short-lived threads and `processes` short-lived child
/// processes, waits for all of them, and returns the kernel's counts.
pub fn churn(threads: u32, processes: u32) -> io::Result<Churn> {
    let handles: Vec<_> = (0..threads).map(|_| std::thread::spawn(nap3)).collect();
    let mut children = Vec::new();
    for _ in 0..processes {
        children.push(fork_child(nap3)? as i32);
    }
    for h in handles {
        h.join().map_err(|_| io::Error::other("churn thread panicked"))?;
    }
    for &pid in &children {
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    let (cv, ci) = csw(libc::RUSAGE_CHILDREN);
    Ok(Churn {
        self_switches: process_switches(),
        children_switches: cv + ci,
        threads,
        children,
    })
}
