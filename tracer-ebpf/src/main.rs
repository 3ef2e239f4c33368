//! tracer's kernel programs.
//!
//! * `sched_switch` (tp_btf): classifies every switch and counts it per class,
//!   voluntary / preempted; stamps the start of the switch for `sched_exit`.
//! * `sched_exit` (tp_btf on `sched_exit_tp`, Linux >= 6.16): runs in the
//!   incoming task when `__schedule()` (or `schedule_tail()` for a new task)
//!   returns, and records `switch_cost_ns` into the class's histogram.
//!
//! Nothing leaves the kernel per event: everything is aggregated in per-CPU
//! array maps that the CLI reads and merges.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{btf_tracepoint, map},
    maps::PerCpuArray,
    programs::BtfTracePointContext,
};
use aya_log_ebpf::error;
use tracer_common::{
    class::{NUM_CLASSES, PREEMPTED, TaskIds, VOLUNTARY, classify, is_voluntary},
    hist::{Histogram, bucket_index},
    maps::{PendingSwitch, SwitchCounts},
};

// Byte offsets in `struct task_struct`, resolved by the CLI from the running
// kernel's BTF and written here at load time; the verifier sees them as
// constants because `.rodata` is frozen.
#[unsafe(no_mangle)]
static TASK_PID_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static TASK_TGID_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static TASK_FLAGS_OFFSET: u32 = 0;
/// Non-zero when `sched_exit` is attached and wants a start time.
#[unsafe(no_mangle)]
static MEASURE_SWITCH_COST: u8 = 0;

#[map]
static COUNTS: PerCpuArray<SwitchCounts> = PerCpuArray::with_max_entries(1, 0);

#[map]
static SWITCH_COST: PerCpuArray<Histogram> = PerCpuArray::with_max_entries(NUM_CLASSES as u32, 0);

#[map]
static PENDING: PerCpuArray<PendingSwitch> = PerCpuArray::with_max_entries(1, 0);

/// Reads a load-time global. A volatile read keeps the compiler from folding
/// the placeholder value in.
#[inline(always)]
fn global<T: Copy>(g: &'static T) -> T {
    // SAFETY: `g` is a valid, aligned `&'static T`.
    unsafe { core::ptr::read_volatile(g) }
}

/// Reads a `T` at `offset` bytes into a `task_struct`.
///
/// # Safety
/// `task` must be a `task_struct` pointer handed to a tp_btf program and
/// `offset` the BTF offset of a member of type `T`. The verifier turns this
/// into a checked (`PROBE_MEM`) load.
#[inline(always)]
unsafe fn task_field<T: Copy>(task: *const u8, offset: u32) -> T {
    // SAFETY: per the function's contract.
    unsafe { core::ptr::read(task.add(offset as usize).cast::<T>()) }
}

#[inline(always)]
fn task_ids(task: *const u8) -> TaskIds {
    // SAFETY: `task` is a tp_btf `struct task_struct *` argument and the
    // offsets are those of `pid`, `tgid` (pid_t) and `flags` (unsigned int).
    unsafe {
        TaskIds {
            pid: task_field(task, global(&TASK_PID_OFFSET)),
            tgid: task_field(task, global(&TASK_TGID_OFFSET)),
            flags: task_field(task, global(&TASK_FLAGS_OFFSET)),
        }
    }
}

// include/trace/events/sched.h (Linux 6.18):
//   TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next,
//            unsigned int prev_state)
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
    let prev: *const u8 = ctx.arg(1);
    let next: *const u8 = ctx.arg(2);
    let prev_state = ctx.arg::<u64>(3) as u32;

    let class = classify(&task_ids(prev), &task_ids(next));
    let kind = if is_voluntary(preempt, prev_state) {
        VOLUNTARY
    } else {
        PREEMPTED
    };

    let counts = COUNTS.get_ptr_mut(0).ok_or("COUNTS")?;
    // SAFETY: per-CPU value of a live map; tracepoints run with preemption
    // off, so nothing else on this CPU touches it meanwhile.
    let counts = unsafe { &mut *counts };
    if let Some(slot) = counts.by_class.get_mut(class.index()).and_then(|c| c.get_mut(kind)) {
        *slot += 1;
    }

    if global(&MEASURE_SWITCH_COST) != 0 {
        let pending = PENDING.get_ptr_mut(0).ok_or("PENDING")?;
        // SAFETY: as above, this CPU's own value.
        let pending = unsafe { &mut *pending };
        pending.class = class as u32;
        // SAFETY: helper without preconditions.
        pending.start_ns = unsafe { bpf_ktime_get_ns() };
    }
    Ok(())
}

// include/trace/events/sched.h (Linux >= 6.16), a bare tracepoint:
//   DECLARE_TRACE(sched_exit, TP_PROTO(bool is_switch), ...)
// traced as `sched_exit_tp`, in the incoming task at the end of __schedule()
// and in schedule_tail().
#[btf_tracepoint(function = "sched_exit_tp")]
pub fn sched_exit(ctx: BtfTracePointContext) -> i32 {
    match try_sched_exit(&ctx) {
        Ok(()) => 0,
        Err(map) => {
            error!(&ctx, "sched_exit: lookup in map {} failed", map);
            0
        }
    }
}

#[inline(always)]
fn try_sched_exit(ctx: &BtfTracePointContext) -> Result<(), &'static str> {
    if ctx.arg::<u64>(0) == 0 {
        return Ok(()); // __schedule() picked the same task again: no switch.
    }
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let pending = PENDING.get_ptr_mut(0).ok_or("PENDING")?;
    // SAFETY: this CPU's own value, preemption is off.
    let pending = unsafe { &mut *pending };
    if pending.start_ns == 0 {
        return Ok(()); // The switch happened before we attached.
    }
    let cost = now.saturating_sub(pending.start_ns);
    pending.start_ns = 0;

    let hist = SWITCH_COST.get_ptr_mut(pending.class).ok_or("SWITCH_COST")?;
    // SAFETY: this CPU's own value, preemption is off.
    let hist = unsafe { &mut *hist };
    if let Some(bucket) = hist.buckets.get_mut(bucket_index(cost)) {
        *bucket += 1;
    }
    hist.sum_ns += cost;
    Ok(())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
