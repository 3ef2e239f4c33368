//! The classic-tracepoint probe, for kernels without BTF: the events carry
//! thread ids only, so a `TASKS` map (thread -> process, kernel thread or
//! not) is seeded from /proc by the CLI, kept up to date by `task_newtask`
//! and `sched_process_free`, and filled in at switch-out, when the current
//! task is prev. Field offsets come from each event's tracefs `format`.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use aya_log_ebpf::error;
use tracer_common::{
    class::{PF_KTHREAD, TaskIds},
    tracepoint::TASK_KTHREAD_BIT,
};

use crate::{
    account::{cpu_state, not_traced, on_switch, on_switch_end, retire_process},
    state::{COMMS, FOLLOW_CHILDREN, PROCS, TASKS, TGIDS, TP_LAYOUT, global},
    task::{TpTask, times_by_pid},
    times, waits,
};

/// `CLONE_THREAD` from include/uapi/linux/sched.h (ABI).
const CLONE_THREAD: u64 = 0x0001_0000;

/// What `TASKS` says about a thread; `None` when it is not known.
#[inline(always)]
fn lookup(pid: i32) -> Option<TaskIds> {
    if pid == 0 {
        return Some(TaskIds {
            pid: 0,
            tgid: 0,
            flags: PF_KTHREAD,
        });
    }
    // SAFETY: plain lookup of a u32 key.
    let v = *unsafe { TASKS.get(&(pid as u32)) }?;
    Some(TaskIds {
        pid,
        tgid: (v & !TASK_KTHREAD_BIT) as i32,
        flags: if v & TASK_KTHREAD_BIT != 0 { PF_KTHREAD } else { 0 },
    })
}

// sched/sched_switch: prev_comm, prev_pid, prev_state, next_comm, next_pid.
#[tracepoint(category = "sched", name = "sched_switch")]
pub fn tp_sched_switch(ctx: TracePointContext) -> u32 {
    match try_tp_sched_switch(&ctx) {
        Ok(()) => 0,
        Err(what) => {
            error!(&ctx, "tp_sched_switch: {} failed", what);
            0
        }
    }
}

#[inline(always)]
fn try_tp_sched_switch(ctx: &TracePointContext) -> Result<(), &'static str> {
    let l = global(&TP_LAYOUT);
    // SAFETY: offsets of fields of this event, from its format file.
    let (prev_pid, next_pid, prev_state) = unsafe {
        (
            ctx.read_at::<i32>(l.switch_prev_pid as usize)
                .map_err(|_| "read prev_pid")?,
            ctx.read_at::<i32>(l.switch_next_pid as usize)
                .map_err(|_| "read next_pid")?,
            ctx.read_at::<i64>(l.switch_prev_state as usize)
                .map_err(|_| "read prev_state")?,
        )
    };
    let cpu = cpu_state()?;
    // prev is the current task: if it is not known yet, it is now (not
    // knowing whether it is a kernel thread: those were all seeded at start
    // or seen by task_newtask).
    let prev_ids = match lookup(prev_pid) {
        Some(ids) => ids,
        None => {
            let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
            let _ = TASKS.insert(&(prev_pid as u32), &tgid, 0);
            TaskIds {
                pid: prev_pid,
                tgid: tgid as i32,
                flags: 0,
            }
        }
    };
    let Some(next_ids) = lookup(next_pid) else {
        cpu.unresolved += 1;
        not_traced(cpu);
        return Ok(());
    };
    // The event's prev_state carries TASK_REPORT_MAX when prev was preempted.
    let preempted = prev_state == 0 || prev_state & i64::from(l.switch_preempted_bit) != 0;
    let prev = TpTask {
        ids: prev_ids,
        ctx,
        comm_offset: l.switch_prev_comm,
    };
    let next = TpTask {
        ids: next_ids,
        ctx,
        comm_offset: l.switch_next_comm,
    };
    let Some(traced) = on_switch(cpu, &prev, &prev_ids, &next, &next_ids, !preempted)? else {
        return Ok(());
    };
    waits::on_switch(&traced, &prev, prev_pid as u32, preempted, &next, next_pid as u32)
}

/// The stamps of the thread an event of sched/sched_waking or
/// sched/sched_wakeup_new is about (its `pid`), created if need be.
#[inline(always)]
fn tp_times_of(ctx: &TracePointContext) -> Option<&'static mut tracer_common::values::TaskTimes> {
    // SAFETY: offset of a field of this event, from its format file.
    let pid = unsafe { ctx.read_at::<i32>(global(&TP_LAYOUT).wakeup_pid as usize) }.ok()?;
    times_by_pid(pid as u32, true)
}

// See `tp_btf::sched_waking`.
#[tracepoint(category = "sched", name = "sched_waking")]
pub fn tp_sched_waking(ctx: TracePointContext) -> u32 {
    waits::woken(tp_times_of(&ctx));
    0
}

#[tracepoint(category = "sched", name = "sched_wakeup_new")]
pub fn tp_sched_wakeup_new(ctx: TracePointContext) -> u32 {
    waits::born(tp_times_of(&ctx));
    0
}

// The bare tracepoint sched_exit_tp (Linux >= 6.16) as a raw tracepoint,
// which needs no BTF: args[0] is `bool is_switch`.
#[raw_tracepoint(tracepoint = "sched_exit_tp")]
pub fn raw_sched_exit(ctx: RawTracePointContext) -> i32 {
    if let Err(map) = on_switch_end(ctx.arg::<u64>(0) != 0) {
        error!(&ctx, "raw_sched_exit: lookup in map {} failed", map);
    }
    0
}

// task/task_newtask: pid, clone_flags; the current task is the parent.
#[tracepoint(category = "task", name = "task_newtask")]
pub fn tp_task_newtask(ctx: TracePointContext) -> u32 {
    let l = global(&TP_LAYOUT);
    // SAFETY: offsets of fields of this event, from its format file.
    let (Ok(pid), Ok(flags)) = (unsafe { ctx.read_at::<i32>(l.newtask_pid as usize) }, unsafe {
        ctx.read_at::<u64>(l.newtask_clone_flags as usize)
    }) else {
        return 0;
    };
    let parent_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let tgid = if flags & CLONE_THREAD != 0 {
        parent_tgid
    } else {
        pid as u32
    };
    // Kernel threads are children of kthreadd (or threads of a kernel thread).
    let parent_is_kthread = parent_tgid == l.kthreadd
        // SAFETY: plain lookup of a u32 key.
        || unsafe { TASKS.get(&parent_tgid) }.is_some_and(|v| v & TASK_KTHREAD_BIT != 0);
    let value = if parent_is_kthread {
        tgid | TASK_KTHREAD_BIT
    } else {
        tgid
    };
    if TASKS.insert(&(pid as u32), &value, 0).is_err() {
        error!(&ctx, "TASKS is full: thread {} is not known", pid);
    }
    // With `-- COMMAND`, a child process of a traced process is traced too.
    // SAFETY: plain lookup of a u32 key.
    if global(&FOLLOW_CHILDREN) != 0 && tgid != parent_tgid && unsafe { TGIDS.get(&parent_tgid) }.is_some() {
        let _ = TGIDS.insert(&tgid, &1, 0);
    }
    0
}

// sched/sched_process_free: pid. Forget the thread, and the process if it
// was its leader, before the number can be reused; queue the process's
// per-process row for retirement.
#[tracepoint(category = "sched", name = "sched_process_free")]
pub fn tp_process_free(ctx: TracePointContext) -> u32 {
    // SAFETY: offset of a field of this event, from its format file.
    if let Ok(pid) = unsafe { ctx.read_at::<i32>(global(&TP_LAYOUT).free_pid as usize) } {
        let pid = pid as u32;
        // SAFETY: plain lookup of a u32 key.
        let leader = unsafe { TASKS.get(&pid) }.is_some_and(|v| v & !TASK_KTHREAD_BIT == pid);
        let _ = TASKS.remove(&pid);
        times::forget(pid);
        if leader {
            let _ = TGIDS.remove(&pid);
            retire_process(pid);
        }
    }
    0
}

// sched/sched_process_exec, in the task that exec'd, whose name is already
// the new one. Per-process reports use it for processes already counted;
// the others get their name when first seen.
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn tp_process_exec(_ctx: TracePointContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if PROCS.get_ptr(&tgid).is_some()
        && let Ok(comm) = bpf_get_current_comm()
    {
        let _ = COMMS.insert(&tgid, &comm, 0);
    }
    0
}
