//! Running a ping-pong: two tasks bouncing a token, pinned to one CPU so
//! that every round trip forces two switches, and the kernel's accounting
//! of what they did.

use std::{
    any::Any,
    io,
    os::fd::{AsRawFd, OwnedFd},
    time::Duration,
};

use super::{
    affinity::CallerAway,
    shared::Shared,
    side::{End, SideResult, fork_side, side},
    spec::{PingPong, Spec, Via},
};

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

/// Runs the workload and returns the kernel's accounting of it.
pub fn run(spec: &Spec) -> io::Result<Outcome> {
    // The caller waits for the workload; it must not do so on the workload's
    // CPU, where its own switches (its sleep spans the whole run) would be
    // counted with the workload's.
    let _away = CallerAway::from(spec.cpu)?;
    let (a_rx, b_tx) = crate::kernel::sys::pipe()?; // b -> a
    let (b_rx, a_tx) = crate::kernel::sys::pipe()?; // a -> b
    let token = Shared::new(4)?;
    let ws_a = working_set(spec.working_set)?;
    let ws_b = working_set(spec.working_set)?;
    let ends = match spec.via {
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
    let working_sets = (ws_a.as_ref(), ws_b.as_ref());
    let (a, b) = match spec.kind {
        PingPong::Threads => in_threads(spec, ends, working_sets)?,
        PingPong::Processes => in_processes(spec, ends, working_sets, (b_rx, b_tx))?,
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

/// The memory a side touches between switches; `None` for none.
fn working_set(len: usize) -> io::Result<Option<Shared>> {
    (len > 0).then(|| Shared::new(len)).transpose()
}

/// `Threads`: both sides in threads of their own, so the caller's affinity
/// is untouched.
fn in_threads(
    spec: &Spec,
    (end_a, end_b): (End<'_>, End<'_>),
    (ws_a, ws_b): (Option<&Shared>, Option<&Shared>),
) -> io::Result<(SideResult, SideResult)> {
    let (a, b) = std::thread::scope(|s| {
        let b = s.spawn(|| side(spec, end_b, ws_b, false, libc::RUSAGE_THREAD));
        let a = s.spawn(|| side(spec, end_a, ws_a, true, libc::RUSAGE_THREAD));
        (a.join(), b.join())
    });
    Ok((a.map_err(panicked)??, b.map_err(panicked)??))
}

/// `Processes`: side b in a forked child, which writes its result into a
/// pipe; side a in a thread of this process. `b_fds` are side b's pipe
/// ends, closed here once the child has them.
fn in_processes(
    spec: &Spec,
    (end_a, end_b): (End<'_>, End<'_>),
    (ws_a, ws_b): (Option<&Shared>, Option<&Shared>),
    b_fds: (OwnedFd, OwnedFd),
) -> io::Result<(SideResult, SideResult)> {
    let child = fork_side(spec, end_b, ws_b)?;
    drop(b_fds);
    let a = std::thread::scope(|s| s.spawn(|| side(spec, end_a, ws_a, true, libc::RUSAGE_THREAD)).join());
    let b = child.finish();
    Ok((a.map_err(panicked)??, b?))
}

fn panicked(_: Box<dyn Any + Send>) -> io::Error {
    io::Error::other("ping-pong thread panicked")
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
