//! Workloads with known ground truth: two tasks bouncing a token, pinned to
//! one CPU so that every round trip forces two switches. The live tests and
//! `tracer bench` run them and check the tracer against the kernel's own
//! accounting (`getrusage`).
//!
//! The side that runs in a forked child only makes async-signal-safe calls
//! (raw syscalls on memory and descriptors prepared before the fork), so the
//! workloads can be started from a multi-threaded process.

pub mod perf_sched;
pub mod scenario;
pub mod spinners;

use std::{
    io,
    os::fd::{AsRawFd, RawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

/// Which two tasks bounce the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingPong {
    /// Two threads of this process: thread switches.
    Threads,
    /// A thread of this process and a forked child: process switches.
    Processes,
}

impl PingPong {
    /// How reports name the workload.
    pub fn name(self) -> &'static str {
        match self {
            PingPong::Threads => "thread",
            PingPong::Processes => "process",
        }
    }

    /// The class every switch of the workload belongs to.
    pub fn class(self) -> tracer_common::Class {
        match self {
            PingPong::Threads => tracer_common::Class::Thread,
            PingPong::Processes => tracer_common::Class::Process,
        }
    }
}

/// How the token travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// One byte over a pair of pipes.
    Pipe,
    /// A word in shared memory, with futex wait/wake.
    Futex,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Pipe => "pipe",
            Via::Futex => "futex",
        }
    }
}

/// One workload run.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub kind: PingPong,
    pub via: Via,
    pub cpu: usize,
    pub round_trips: u64,
    /// Bytes each side touches (one write per 64-byte line) between switches.
    pub working_set: usize,
}

impl Spec {
    pub fn new(kind: PingPong, cpu: usize, round_trips: u64) -> Self {
        Self {
            kind,
            via: Via::Pipe,
            cpu,
            round_trips,
            working_set: 0,
        }
    }
}

/// What the workload did, by the kernel's own accounting.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    pub round_trips: u64,
    /// Wall time of the loop (measured by the side that starts each round trip).
    pub elapsed: Duration,
    /// Voluntary switches of both tasks during the loop (`ru_nvcsw`).
    pub voluntary: u64,
    /// Involuntary switches of both tasks during the loop (`ru_nivcsw`).
    pub involuntary: u64,
    /// Both sides were still on the requested CPU at the end.
    pub stayed_on_cpu: bool,
    /// Time both tasks ran on a CPU during the loop (`sum_exec_runtime`,
    /// first field of /proc/thread-self/schedstat).
    pub run_ns: u64,
    /// Time both tasks waited in a run queue during the loop (`run_delay`,
    /// second field of /proc/thread-self/schedstat).
    pub wait_ns: u64,
    /// Loop time of both tasks, summed (each from its own start to end).
    pub loop_ns: u64,
    /// Thread ids of the two sides (the side that starts each round trip
    /// first; with `Processes` the other is the child's pid).
    pub tids: [u32; 2],
}

impl Outcome {
    /// Every switch out of either task, as the kernel counted them.
    pub fn switches(&self) -> u64 {
        self.voluntary + self.involuntary
    }

    /// Mean round-trip time.
    pub fn rtt_ns(&self) -> u64 {
        (self.elapsed.as_nanos() / u128::from(self.round_trips.max(1))) as u64
    }
}

/// What one side reports: `(nvcsw, nivcsw)` over its loop, its loop time, and
/// whether it ended on the requested CPU.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct SideResult {
    voluntary: u64,
    involuntary: u64,
    elapsed_ns: u64,
    on_cpu: u64,
    run_ns: u64,
    wait_ns: u64,
    tid: u64,
}

/// Anonymous memory shared with a forked child, unmapped on drop.
struct Shared {
    ptr: NonNull<u8>,
    len: usize,
}

impl Shared {
    fn new(len: usize) -> io::Result<Self> {
        let len = len.max(1);
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Self { ptr, len })
    }

    fn word(&self) -> &AtomicU32 {
        // SAFETY: the mapping is page-aligned, at least 4 bytes, zero-filled,
        // and lives as long as `self`.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().cast()) }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the mapping is plain shared memory; access to the token goes through
// atomics and each working set is touched by one side only.
unsafe impl Sync for Shared {}
// SAFETY: as above.
unsafe impl Send for Shared {}

/// Pins the calling thread to `cpu`. Async-signal-safe.
pub fn pin(cpu: usize) -> io::Result<()> {
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

/// Keeps the calling thread off one CPU while it lives; restores the
/// thread's affinity when dropped.
pub(crate) struct CallerAway {
    saved: libc::cpu_set_t,
}

impl CallerAway {
    /// `None` when `cpu` is the only CPU the caller may use.
    pub(crate) fn from(cpu: usize) -> io::Result<Option<Self>> {
        // SAFETY: an all-zero cpu_set_t is a valid empty set.
        let mut saved: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `saved` is a valid, writable cpu_set_t of the size given.
        if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut away = saved;
        // SAFETY: CPU_CLR/CPU_COUNT on a valid set; out-of-range CPUs are ignored.
        let others = unsafe {
            libc::CPU_CLR(cpu, &mut away);
            libc::CPU_COUNT(&away)
        };
        if others == 0 {
            return Ok(None);
        }
        // SAFETY: `away` is a valid cpu_set_t of the size given.
        if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &away) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(Self { saved }))
    }
}

impl Drop for CallerAway {
    fn drop(&mut self) {
        // SAFETY: `saved` is the valid cpu_set_t read in `from`.
        unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.saved) };
    }
}

/// `(nvcsw, nivcsw)` of the calling thread or process. Async-signal-safe.
pub(crate) fn csw(who: libc::c_int) -> (u64, u64) {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    unsafe { libc::getrusage(who, &mut ru) };
    (ru.ru_nvcsw as u64, ru.ru_nivcsw as u64)
}

/// `(sum_exec_runtime, run_delay)` of the calling thread, in ns, from
/// /proc/thread-self/schedstat; zeros if unreadable. Async-signal-safe: raw
/// syscalls and a stack buffer.
pub(crate) fn schedstat() -> (u64, u64) {
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/thread-self/schedstat".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return (0, 0);
    }
    let mut buf = [0u8; 96];
    // SAFETY: reads into the stack buffer, within its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: closes the descriptor opened above.
    unsafe { libc::close(fd) };
    let mut fields = buf[..n.max(0) as usize]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .map(|f| {
            f.iter().try_fold(0u64, |acc, &d| {
                d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
            })
        });
    (
        fields.next().flatten().unwrap_or(0),
        fields.next().flatten().unwrap_or(0),
    )
}

/// One side's end of the channel. Async-signal-safe.
#[derive(Clone, Copy)]
enum End<'a> {
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

/// Writes one byte per 64-byte line of the working set.
fn touch(ws: Option<&Shared>) {
    if let Some(ws) = ws {
        let base = ws.ptr.as_ptr();
        for off in (0..ws.len).step_by(64) {
            // SAFETY: `off < len`, inside the mapping, touched by this side only.
            unsafe {
                let p = base.add(off);
                p.write_volatile(p.read_volatile().wrapping_add(1));
            }
        }
    }
}

/// One side's loop. `first` starts each round trip. Async-signal-safe.
fn side(spec: &Spec, end: End<'_>, ws: Option<&Shared>, first: bool, who: libc::c_int) -> io::Result<SideResult> {
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

/// Runs the workload and returns the kernel's accounting of it.
pub fn run(spec: &Spec) -> io::Result<Outcome> {
    // The caller waits for the workload; it must not do so on the workload's
    // CPU, where its own switches (its sleep spans the whole run) would be
    // counted with the workload's.
    let _away = CallerAway::from(spec.cpu)?;
    let (a_rx, b_tx) = crate::kernel::sys::pipe()?; // b -> a
    let (b_rx, a_tx) = crate::kernel::sys::pipe()?; // a -> b
    let token = Shared::new(4)?;
    let ws_a = (spec.working_set > 0)
        .then(|| Shared::new(spec.working_set))
        .transpose()?;
    let ws_b = (spec.working_set > 0)
        .then(|| Shared::new(spec.working_set))
        .transpose()?;
    let (end_a, end_b) = match spec.via {
        Via::Pipe => (
            End::Pipe {
                rx: a_rx.as_raw_fd(),
                tx: a_tx.as_raw_fd(),
            },
            End::Pipe {
                rx: b_rx.as_raw_fd(),
                tx: b_tx.as_raw_fd(),
            },
        ),
        Via::Futex => (
            End::Futex {
                word: token.word(),
                mine: 0,
            },
            End::Futex {
                word: token.word(),
                mine: 1,
            },
        ),
    };
    let panicked = |_| io::Error::other("ping-pong thread panicked");
    let (a, b) = match spec.kind {
        PingPong::Threads => {
            // Both sides in threads of their own: the caller's affinity is untouched.
            let (a, b) = std::thread::scope(|s| {
                let b = s.spawn(|| side(spec, end_b, ws_b.as_ref(), false, libc::RUSAGE_THREAD));
                let a = s.spawn(|| side(spec, end_a, ws_a.as_ref(), true, libc::RUSAGE_THREAD));
                (a.join(), b.join())
            });
            (a.map_err(panicked)??, b.map_err(panicked)??)
        }
        PingPong::Processes => {
            let (report_rx, report_tx) = crate::kernel::sys::pipe()?;
            // SAFETY: the child only makes async-signal-safe calls on memory and
            // descriptors prepared before the fork, then _exits.
            let child = unsafe { libc::fork() };
            if child < 0 {
                return Err(io::Error::last_os_error());
            }
            if child == 0 {
                let code = match side(spec, end_b, ws_b.as_ref(), false, libc::RUSAGE_SELF) {
                    Ok(result) => {
                        let bytes = (&raw const result).cast::<u8>();
                        let len = size_of::<SideResult>();
                        // SAFETY: `result` is a plain repr(C) struct of `len` bytes.
                        let written = unsafe { libc::write(report_tx.as_raw_fd(), bytes.cast(), len) };
                        if written == len as isize { 0 } else { 4 }
                    }
                    Err(_) => 3,
                };
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(code) };
            }
            drop((b_rx, b_tx, report_tx));
            let a = std::thread::scope(|s| {
                s.spawn(|| side(spec, end_a, ws_a.as_ref(), true, libc::RUSAGE_THREAD))
                    .join()
            });
            let b = read_side_result(report_rx.as_raw_fd());
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            let a = a.map_err(panicked)??;
            if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                return Err(io::Error::other(format!("ping-pong child failed (status {status:#x})")));
            }
            (a, b?)
        }
    };
    Ok(Outcome {
        round_trips: spec.round_trips,
        elapsed: Duration::from_nanos(a.elapsed_ns),
        voluntary: a.voluntary + b.voluntary,
        involuntary: a.involuntary + b.involuntary,
        stayed_on_cpu: a.on_cpu == 1 && b.on_cpu == 1,
        run_ns: a.run_ns + b.run_ns,
        wait_ns: a.wait_ns + b.wait_ns,
        loop_ns: a.elapsed_ns + b.elapsed_ns,
        tids: [a.tid as u32, b.tid as u32],
    })
}

fn read_side_result(fd: RawFd) -> io::Result<SideResult> {
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

/// Every switch of this process's threads so far, exited ones included
/// (`getrusage(RUSAGE_SELF)`).
pub fn process_switches() -> u64 {
    let (voluntary, involuntary) = csw(libc::RUSAGE_SELF);
    voluntary + involuntary
}

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

/// Forks a child that runs `body` and then `_exit(0)`s; returns its pid.
/// `body` must be async-signal-safe.
pub(crate) fn fork_child(body: impl FnOnce()) -> io::Result<u32> {
    // SAFETY: the child only runs `body` (async-signal-safe by contract) and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        body();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    Ok(pid as u32)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the tracer: each pinned round trip forces two switches by the
    /// kernel's own count (the very last one falls after the counts are read),
    /// for every mechanism and kind.
    #[test]
    fn pinned_round_trips_force_two_switches() {
        let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
        for kind in [PingPong::Threads, PingPong::Processes] {
            for via in [Via::Pipe, Via::Futex] {
                let spec = Spec {
                    kind,
                    via,
                    cpu,
                    round_trips: 2_000,
                    working_set: 4096,
                };
                let out = run(&spec).unwrap();
                assert!(out.switches() >= 2 * 2_000 - 1, "{kind:?} {via:?}: {out:?}");
                assert!(out.stayed_on_cpu, "{kind:?} {via:?}");
                assert!(out.rtt_ns() > 0);
                // Two tasks on one CPU: together they ran for at most the loop's wall time.
                assert!(
                    out.run_ns > 0 && out.run_ns <= out.elapsed.as_nanos() as u64 + 1_000_000,
                    "{out:?}"
                );
            }
        }
    }
}
