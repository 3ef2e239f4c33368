//! Off-CPU and run-queue times, on one real clock (`bpf_ktime_get_ns`):
//! each thread's stamps are set when it leaves a CPU and when it is woken,
//! and read when it is switched in again.
//!
//! * `offcpu_ns`: from a thread's switch-out to its next switch-in.
//! * `runq_latency_ns`: from the moment it became runnable (woken:
//!   `sched_waking`, `sched_wakeup_new` for a new task; or a switch-out that
//!   left it runnable: preempted or yielding) to its switch-in: what
//!   `perf sched timehist` calls "sch delay". runqlat starts at
//!   sched_wakeup instead, which for a wakeup onto an idle CPU (queued on
//!   that CPU's wakelist since Linux 6.0) fires only once that CPU has left
//!   idle: it misses the IPI and the idle exit, which the woken task waits
//!   through all the same.
//!   Not the scheduler's own `sched_info` stamps: those are run-queue clock
//!   readings, and the scheduler skips the clock update after a wakeup that
//!   sets need_resched, so the whole wait after such a wakeup reads as 0.
//!
//! The stamps of a thread are in `TID_TIMES` by thread id (`tid_times`: an
//! array, the lookup is inlined), or beyond it in `TASK_TIMES` (`times`).

use aya_ebpf::helpers::bpf_ktime_get_ns;
use tracer_common::{Metric, values::TaskTimes};

use crate::{
    account::{Traced, record},
    state::measures,
    task::Task,
};

/// The stamps part of a traced switch: stamps `prev` as it leaves (still
/// runnable when `prev_runnable`: preempted, or switched out in the running
/// state), and records `next`'s off-CPU and run-queue times as it comes in
/// (when `t.record`). Only tasks that pass the task filters are stamped or
/// measured; the idle task never.
#[inline(always)]
pub fn on_switch<P: Task, N: Task>(
    t: &Traced,
    prev: &P,
    prev_pid: u32,
    prev_runnable: bool,
    next: &N,
    next_pid: u32,
) -> Result<(), &'static str> {
    let (offcpu, runq) = (measures(Metric::Offcpu), measures(Metric::Runq));
    if !(offcpu || runq) {
        return Ok(());
    }
    if prev_pid != 0
        && t.prev_selected
        && let Some(times) = prev.times(prev_pid, true)
    {
        if offcpu {
            times.offcpu_since = t.now;
        }
        if runq {
            // A stamp on a task that blocks: it was woken while still on the
            // CPU (a waker saw it asleep before it switched out) and waits
            // from here; or the stamp is left from a wakeup that needed no
            // switch, and the wakeup this task now needs overwrites it.
            let waits = prev_runnable || times.runq_since != 0;
            times.runq_since = if waits { t.now } else { 0 };
        }
    }
    if next_pid != 0
        && t.next_selected
        && let Some(times) = next.times(next_pid, false)
    {
        if offcpu && times.offcpu_since != 0 && t.record {
            record(
                t.hist_base,
                Metric::Offcpu,
                t.class,
                t.now.saturating_sub(times.offcpu_since),
            )?;
        }
        if runq && times.runq_since != 0 {
            if t.record {
                record(
                    t.hist_base,
                    Metric::Runq,
                    t.class,
                    t.now.saturating_sub(times.runq_since),
                )?;
            }
            times.runq_since = 0;
        }
    }
    Ok(())
}

/// A thread became runnable (woken): it waits for a CPU from now. `times`
/// are its stamps (created if need be).
#[inline(always)]
pub fn woken(times: Option<&'static mut TaskTimes>) {
    if let Some(times) = times {
        // SAFETY: helper without preconditions.
        times.runq_since = unsafe { bpf_ktime_get_ns() };
    }
}

/// A new thread is queued for the first time (`sched_wakeup_new`, before
/// its first switch-in): it has not been off a CPU yet, whatever the stamps
/// of an exited thread that had its id say, and it waits from now.
#[inline(always)]
pub fn born(times: Option<&'static mut TaskTimes>) {
    if let Some(times) = times {
        times.offcpu_since = 0;
        // SAFETY: helper without preconditions.
        times.runq_since = unsafe { bpf_ktime_get_ns() };
    }
}
