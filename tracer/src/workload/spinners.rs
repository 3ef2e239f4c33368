//! A workload where every wait is a tick preemption: threads of this
//! process spinning on one CPU, never blocking. There the scheduler's own
//! accounting is exact for run-queue time too: each wait starts when a
//! spinner is switched out still runnable and ends when it is switched in,
//! both at a run-queue clock update, so schedstat's `run_delay` is ground
//! truth for `runq_latency_ns` (after a wakeup it is not: see `check`).

use std::{io, time::Duration};

use crate::workload::{
    accounting::{csw, schedstat},
    affinity::{CallerAway, pin},
};

/// What the spinners did, by the kernel's own accounting.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spun {
    /// Switches out of the spinners (`ru_nvcsw + ru_nivcsw` of each thread).
    pub switches: u64,
    /// Of which involuntary (`ru_nivcsw`).
    pub involuntary: u64,
    /// Time the spinners ran (`sum_exec_runtime`).
    pub run_ns: u64,
    /// Time they waited in the run queue (`run_delay`).
    pub wait_ns: u64,
    /// Every spinner was still on the CPU at its end.
    pub stayed_on_cpu: bool,
}

/// Spins `threads` threads pinned to `cpu` for `time` each (wall clock).
pub fn spin(cpu: usize, threads: usize, time: Duration) -> io::Result<Spun> {
    // The caller waits elsewhere, so only the spinners run on the CPU.
    let _away = CallerAway::from(cpu)?;
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| one(cpu, time))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(io::Error::other("spinner panicked"))))
            .collect::<io::Result<Vec<Spun>>>()
    })?;
    Ok(results.iter().fold(
        Spun {
            stayed_on_cpu: true,
            ..Spun::default()
        },
        |sum, r| Spun {
            switches: sum.switches + r.switches,
            involuntary: sum.involuntary + r.involuntary,
            run_ns: sum.run_ns + r.run_ns,
            wait_ns: sum.wait_ns + r.wait_ns,
            stayed_on_cpu: sum.stayed_on_cpu && r.stayed_on_cpu,
        },
    ))
}

fn one(cpu: usize, time: Duration) -> io::Result<Spun> {
    pin(cpu)?;
    let (csw_before, sched_before) = (csw(libc::RUSAGE_THREAD), schedstat());
    let end = crate::kernel::sys::monotonic_ns() + time.as_nanos() as u64;
    while crate::kernel::sys::monotonic_ns() < end {
        std::hint::spin_loop();
    }
    let (csw_after, sched_after) = (csw(libc::RUSAGE_THREAD), schedstat());
    // SAFETY: sched_getcpu has no preconditions.
    let on_cpu = unsafe { libc::sched_getcpu() } == cpu as i32;
    Ok(Spun {
        switches: (csw_after.0 + csw_after.1).saturating_sub(csw_before.0 + csw_before.1),
        involuntary: csw_after.1.saturating_sub(csw_before.1),
        run_ns: sched_after.0.saturating_sub(sched_before.0),
        wait_ns: sched_after.1.saturating_sub(sched_before.1),
        stayed_on_cpu: on_cpu,
    })
}
