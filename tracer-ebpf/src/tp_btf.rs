//! The tp_btf probe: programs that get `struct task_struct *` arguments and
//! read them at offsets from the running kernel's BTF.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use aya_log_ebpf::error;
use tracer_common::{class::is_voluntary, values::PREV_STATE_FROM_ARGUMENT};

use crate::{
    account::{cpu_state, on_switch, on_switch_end, retire_process},
    state::{COMMS, FOLLOW_CHILDREN, PROCS, TASK_COMM_OFFSET, TASK_PID_OFFSET, TASK_PREV_STATE_OFFSET, TGIDS, global},
    task::{BtfTask, Task, task_field},
    times, waits,
};

/// `TASK_RUNNING` (include/linux/sched.h).
const TASK_RUNNING: u32 = 0;

// include/trace/events/sched.h (Linux 6.18):
//   TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next,
//            unsigned int prev_state)
// Before 5.18 there is no `prev_state`: it is read from `prev` (at the offset
// of `__state`, or `state` before 5.14), the value the kernel's own
// tracepoint reports.
#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    match try_sched_switch(&ctx) {
        Ok(()) => 0,
        Err(map) => {
            error!(&ctx, "sched_switch: lookup in map {} failed", map);
            0
        }
    }
}

#[inline(always)]
fn try_sched_switch(ctx: &BtfTracePointContext) -> Result<(), &'static str> {
    let preempt = ctx.arg::<u64>(0) != 0;
    let prev = BtfTask(ctx.arg(1));
    let next = BtfTask(ctx.arg(2));
    let state_offset = global(&TASK_PREV_STATE_OFFSET);
    let prev_state = if state_offset == PREV_STATE_FROM_ARGUMENT {
        ctx.arg::<u64>(3) as u32
    } else {
        // SAFETY: `prev` is a tp_btf task pointer; the offset is that of its
        // state (an unsigned int, or the low half of a long).
        unsafe { task_field::<u32>(prev.0, state_offset) }
    };
    let (prev_ids, next_ids) = (prev.ids(), next.ids());

    let cpu = cpu_state()?;
    let voluntary = is_voluntary(preempt, prev_state);
    let Some(traced) = on_switch(cpu, &prev, &prev_ids, &next, &next_ids, voluntary)? else {
        return Ok(());
    };
    // A preempted task stays queued whatever its state says.
    let runnable = preempt || prev_state == TASK_RUNNING;
    waits::on_switch(
        &traced,
        &prev,
        prev_ids.pid as u32,
        runnable,
        &next,
        next_ids.pid as u32,
    )
}

// include/trace/events/sched.h (Linux >= 6.16), a bare tracepoint:
//   DECLARE_TRACE(sched_exit, TP_PROTO(bool is_switch), ...)
// traced as `sched_exit_tp`, in the incoming task at the end of __schedule()
// and in schedule_tail().
#[btf_tracepoint(function = "sched_exit_tp")]
pub fn sched_exit(ctx: BtfTracePointContext) -> i32 {
    if let Err(map) = on_switch_end(ctx.arg::<u64>(0) != 0) {
        error!(&ctx, "sched_exit: lookup in map {} failed", map);
    }
    0
}

/// The stamps of `p`, a tp_btf task pointer, created if need be.
#[inline(always)]
fn times_of(p: *const u8) -> Option<&'static mut tracer_common::values::TaskTimes> {
    // SAFETY: `p` is a tp_btf task pointer; the offset is that of `pid`, a pid_t.
    let pid = unsafe { task_field::<i32>(p, global(&TASK_PID_OFFSET)) } as u32;
    BtfTask(p).times(pid, true)
}

// include/trace/events/sched.h: TP_PROTO(struct task_struct *p)
// At the start of try_to_wake_up(), in the waker, once the task is known to
// be woken: for a wakeup onto an idle CPU, sched_wakeup fires only after that
// CPU has left idle to enqueue the task itself (its wakelist, Linux >= 6.0),
// and the task waits from here.
#[btf_tracepoint(function = "sched_waking")]
pub fn sched_waking(ctx: BtfTracePointContext) -> i32 {
    waits::woken(times_of(ctx.arg(0)));
    0
}

// include/trace/events/sched.h: TP_PROTO(struct task_struct *p)
// A new task (there is no sched_waking for it), as it is first enqueued.
#[btf_tracepoint(function = "sched_wakeup_new")]
pub fn sched_wakeup_new(ctx: BtfTracePointContext) -> i32 {
    waits::born(times_of(ctx.arg(0)));
    0
}

// include/trace/events/sched.h:
//   TP_PROTO(struct task_struct *parent, struct task_struct *child)
// With `-- COMMAND`, a child of a traced process is traced too (threads share
// the tgid and need nothing).
#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    if global(&FOLLOW_CHILDREN) == 0 {
        return 0;
    }
    let parent = BtfTask(ctx.arg(0)).ids();
    let child = BtfTask(ctx.arg(1)).ids();
    let (parent_tgid, child_tgid) = (parent.tgid as u32, child.tgid as u32);
    // SAFETY: plain lookup of a u32 key.
    let parent_traced = unsafe { TGIDS.get(&parent_tgid) }.is_some();
    if parent_tgid != child_tgid && parent_traced && TGIDS.insert(&child_tgid, &1, 0).is_err() {
        error!(&ctx, "TGIDS is full: process {} is not traced", child_tgid);
    }
    0
}

// include/trace/events/sched.h: TP_PROTO(struct task_struct *p)
// Each task when it is freed: forget its per-task timestamps (where they are
// not in task storage), and when a process is gone (its leader freed) its
// tgid, before the numbers can be reused, and queue its per-process row for
// retirement.
#[btf_tracepoint(function = "sched_process_free")]
pub fn sched_process_free(ctx: BtfTracePointContext) -> i32 {
    let p = BtfTask(ctx.arg(0)).ids();
    times::forget(p.pid as u32);
    if p.pid == p.tgid {
        let _ = TGIDS.remove(&(p.tgid as u32));
        retire_process(p.tgid as u32);
    }
    0
}

// include/trace/events/sched.h:
//   TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
// After exec the process has a new name; per-process reports use it.
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    let p: *const u8 = ctx.arg(0);
    let tgid = BtfTask(p).ids().tgid as u32;
    // SAFETY: `p` is a tp_btf task pointer and the offset is that of `comm`, a char[16].
    let comm: [u8; 16] = unsafe { task_field(p, global(&TASK_COMM_OFFSET)) };
    // Only processes already counted; the others get their name when first
    // seen. When the map is full the report keeps the older name.
    if PROCS.get_ptr(&tgid).is_some() {
        let _ = COMMS.insert(&tgid, &comm, 0);
    }
    0
}
