//! A ring of tasks passing a token on one pinned CPU, each touching its own
//! working set before passing it on: lmbench's lat_ctx, with the kernel's
//! accounting. Task i reads the token from pipe i and writes it into pipe
//! i+1 (the last into pipe 0); a lap is one switch per task. Threads of this
//! process, or one task here and the others in forked children. A task that
//! the one it woke preempts blocks later in the same lap, so a lap can take
//! more switches than tasks (up to two per task): the kernel's count says.

use std::{
    io,
    os::fd::{AsRawFd, OwnedFd},
    time::Duration,
};

use super::{
    affinity::{CallerAway, pin},
    ping_pong::Outcome,
    shared::{Shared, touch},
    side::{End, SideResult, fork_side, side},
    spec::{PingPong, Spec},
};

/// One ring run.
#[derive(Clone, Copy, Debug)]
pub struct Ring {
    pub kind: PingPong,
    /// Tasks in the ring (at least 2).
    pub tasks: usize,
    pub cpu: usize,
    /// Times the token goes round.
    pub laps: u64,
    /// Bytes each task touches before passing the token on.
    pub working_set: usize,
    /// One write every this many bytes: 64 (a cache line) or 4096 (a page).
    pub stride: usize,
}

impl Ring {
    /// The side loop's view of this ring (a "round trip" is a lap).
    fn spec(&self) -> Spec {
        Spec {
            working_set: self.working_set,
            ..Spec::new(self.kind, self.cpu, self.laps)
        }
    }
}

/// Runs the ring; the outcome's `round_trips` are laps, `elapsed` the first
/// task's loop time, switches those of every task.
pub fn run_ring(ring: &Ring) -> io::Result<Outcome> {
    if ring.tasks < 2 {
        return Err(io::Error::other("a ring needs at least 2 tasks"));
    }
    let _away = CallerAway::from(ring.cpu)?;
    let pipes = (0..ring.tasks)
        .map(|_| crate::kernel::sys::pipe())
        .collect::<io::Result<Vec<(OwnedFd, OwnedFd)>>>()?;
    let ends: Vec<End<'_>> = (0..ring.tasks)
        .map(|i| End::Pipe {
            rx: pipes[i].0.as_raw_fd(),
            tx: pipes[(i + 1) % ring.tasks].1.as_raw_fd(),
        })
        .collect();
    let sets = (0..ring.tasks)
        .map(|_| working_set(ring))
        .collect::<io::Result<Vec<Option<Shared>>>>()?;
    let spec = ring.spec();
    let results = match ring.kind {
        PingPong::Threads => std::thread::scope(|s| {
            let handles: Vec<_> = (0..ring.tasks)
                .map(|i| {
                    let (end, ws, spec) = (ends[i], sets[i].as_ref(), &spec);
                    s.spawn(move || side(spec, end, ws, i == 0, libc::RUSAGE_THREAD))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| io::Error::other("ring thread panicked"))?)
                .collect::<io::Result<Vec<SideResult>>>()
        })?,
        PingPong::Processes => in_processes(&spec, &ends, &sets)?,
    };
    Ok(Outcome {
        round_trips: ring.laps,
        elapsed: Duration::from_nanos(results[0].elapsed_ns),
        voluntary: results.iter().map(|r| r.voluntary).sum(),
        involuntary: results.iter().map(|r| r.involuntary).sum(),
        stayed_on_cpu: results.iter().all(|r| r.on_cpu == 1),
        run_ns: results.iter().map(|r| r.run_ns).sum(),
        wait_ns: results.iter().map(|r| r.wait_ns).sum(),
        loop_ns: results.iter().map(|r| r.elapsed_ns).sum(),
        tids: [results[0].tid as u32, results[1].tid as u32],
    })
}

fn working_set(ring: &Ring) -> io::Result<Option<Shared>> {
    (ring.working_set > 0)
        .then(|| Shared::with_stride(ring.working_set, ring.stride))
        .transpose()
}

/// Task 0 in a thread of this process, the others in forked children.
fn in_processes(spec: &Spec, ends: &[End<'_>], sets: &[Option<Shared>]) -> io::Result<Vec<SideResult>> {
    let children = (1..ends.len())
        .map(|i| fork_side(spec, ends[i], sets[i].as_ref()))
        .collect::<io::Result<Vec<_>>>()?;
    let first = std::thread::scope(|s| {
        s.spawn(|| side(spec, ends[0], sets[0].as_ref(), true, libc::RUSAGE_THREAD))
            .join()
    });
    let mut results = vec![first.map_err(|_| io::Error::other("ring thread panicked"))??];
    for child in children {
        results.push(child.finish()?);
    }
    Ok(results)
}

/// The same touching without switching: one pinned thread touching `tasks`
/// working sets in turn, `laps` times; ns per working set touched.
pub fn touch_alone(ring: &Ring) -> io::Result<f64> {
    let sets = (0..ring.tasks)
        .map(|_| working_set(ring))
        .collect::<io::Result<Vec<Option<Shared>>>>()?;
    let laps = ring.laps;
    let cpu = ring.cpu;
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(cpu)?;
            sets.iter().for_each(|ws| touch(ws.as_ref()));
            let start = crate::kernel::sys::monotonic_ns();
            for _ in 0..laps {
                sets.iter().for_each(|ws| touch(ws.as_ref()));
            }
            let ns = crate::kernel::sys::monotonic_ns() - start;
            Ok(ns as f64 / (laps.max(1) * sets.len() as u64) as f64)
        })
        .join()
        .map_err(|_| io::Error::other("touching thread panicked"))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the tracer: a pinned lap forces one switch per task by the
    /// kernel's own count, for threads and processes.
    #[test]
    fn a_lap_is_one_switch_per_task() {
        let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
        for kind in [PingPong::Threads, PingPong::Processes] {
            let ring = Ring {
                kind,
                tasks: 5,
                cpu,
                laps: 1_000,
                working_set: 4096,
                stride: 64,
            };
            let out = run_ring(&ring).unwrap();
            // At least one switch per task and lap; a task preempted by the
            // one it woke blocks later in the same lap: at most two.
            assert!(out.switches() >= 5 * 1_000 - 1, "{kind:?}: {out:?}");
            assert!(out.switches() <= 2 * 5 * 1_000 + 100, "{kind:?}: {out:?}");
            assert!(out.stayed_on_cpu, "{kind:?}");
        }
        assert!(
            run_ring(&Ring {
                tasks: 1,
                ..Ring {
                    kind: PingPong::Threads,
                    tasks: 2,
                    cpu,
                    laps: 1,
                    working_set: 0,
                    stride: 64
                }
            })
            .is_err()
        );
    }

    #[test]
    fn touching_more_takes_longer() {
        let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
        let ring = |working_set| Ring {
            kind: PingPong::Threads,
            tasks: 2,
            cpu,
            laps: 200,
            working_set,
            stride: 64,
        };
        let (small, big) = (
            touch_alone(&ring(4096)).unwrap(),
            touch_alone(&ring(256 << 10)).unwrap(),
        );
        assert!(small > 0.0 && big > 4.0 * small, "{small} ns vs {big} ns");
    }
}
