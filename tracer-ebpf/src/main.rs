//! tracer's kernel programs.
//!
//! * `sched_switch` (tp_btf): classifies every switch and counts it per class,
//!   voluntary / preempted; measures `oncpu_ns` of prev and `offcpu_ns` and
//!   `runq_latency_ns` of next; stamps the start of the switch for `sched_exit`.
//! * `sched_exit` (tp_btf on `sched_exit_tp`, Linux >= 6.16): runs in the
//!   incoming task when `__schedule()` (or `schedule_tail()` for a new task)
//!   returns, and records `switch_cost_ns`.
//! * `sched_wakeup`, `sched_wakeup_new` (tp_btf): stamp when a task became
//!   runnable, for `runq_latency_ns`.
//!
//! Nothing leaves the kernel per event: everything is aggregated in per-CPU
//! maps that the CLI reads and merges. Metrics that are not selected are
//! skipped through a load-time constant, which the verifier prunes.
#![no_std]
#![no_main]

mod task_storage;

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{btf_map, btf_tracepoint, map},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::BtfTracePointContext,
};
use aya_log_ebpf::error;
use task_storage::TaskStorage;
use tracer_common::{
    class::{NUM_CLASSES, PREEMPTED, TaskIds, VOLUNTARY, classify, is_voluntary},
    hist::{Histogram, bucket_index},
    maps::{
        CgroupFilter, CpuState, FILTER_CGROUP, FILTER_COMM, FILTER_CPU, FILTER_TGID, FILTER_TID, MAX_CPUS, MAX_PROCS,
        MAX_TGIDS, MAX_TIDS, Metric, NUM_METRICS, ProcCounts, TaskTimes,
    },
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
#[unsafe(no_mangle)]
static TASK_COMM_OFFSET: u32 = 0;
/// The metrics to measure, a `Metric::bit` mask.
#[unsafe(no_mangle)]
static METRICS: u32 = 0;
/// `FILTER_*` bits: which filters are on.
#[unsafe(no_mangle)]
static FILTER: u32 = 0;
/// The task name for `FILTER_COMM`, NUL-padded.
#[unsafe(no_mangle)]
static FILTER_COMM_NAME: [u8; 16] = [0; 16];
/// The cgroup for `FILTER_CGROUP`, and the offsets to find a task's.
#[unsafe(no_mangle)]
static FILTER_CGROUP_SPEC: CgroupFilter = CgroupFilter {
    id: 0,
    level: 0,
    task_cgroups: 0,
    dfl_cgrp: 0,
    cgroup_level: 0,
    ancestors: 0,
    ancestor_ids: 0,
    kn: 0,
    kn_id: 0,
};
/// Non-zero to count switches per process in `PROCS`.
#[unsafe(no_mangle)]
static PER_PROCESS: u8 = 0;
/// Non-zero to add children of traced processes to `TGIDS` (`-- COMMAND`).
#[unsafe(no_mangle)]
static FOLLOW_CHILDREN: u8 = 0;

#[map]
static CPU: PerCpuArray<CpuState> = PerCpuArray::with_max_entries(1, 0);

#[map]
static HISTS: PerCpuArray<Histogram> = PerCpuArray::with_max_entries((NUM_METRICS * NUM_CLASSES) as u32, 0);

#[btf_map]
static TASK_TIMES: TaskStorage<TaskTimes> = TaskStorage::new();

#[map]
static TGIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_TGIDS, 0);

#[map]
static TIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_TIDS, 0);

#[map]
static CPUS: Array<u8> = Array::with_max_entries(MAX_CPUS, 0);

#[map]
static PROCS: PerCpuHashMap<u32, ProcCounts> = PerCpuHashMap::with_max_entries(MAX_PROCS, 0);

#[map]
static COMMS: HashMap<u32, [u8; 16]> = HashMap::with_max_entries(MAX_PROCS, 0);

/// Reads a load-time global. A volatile read keeps the compiler from folding
/// the placeholder value in.
#[inline(always)]
fn global<T: Copy>(g: &'static T) -> T {
    // SAFETY: `g` is a valid, aligned `&'static T`.
    unsafe { core::ptr::read_volatile(g) }
}

#[inline(always)]
fn measures(metric: Metric) -> bool {
    global(&METRICS) & metric.bit() != 0
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

/// Whether a task passes every task filter that is on.
#[inline(always)]
fn task_selected(filter: u32, task: *const u8, ids: &TaskIds) -> bool {
    if ids.pid == 0 {
        return false; // The idle task belongs to no process.
    }
    let (tgid, pid) = (ids.tgid as u32, ids.pid as u32);
    // SAFETY: plain lookups of u32 keys.
    if filter & FILTER_TGID != 0 && unsafe { TGIDS.get(&tgid) }.is_none() {
        return false;
    }
    // SAFETY: as above.
    if filter & FILTER_TID != 0 && unsafe { TIDS.get(&pid) }.is_none() {
        return false;
    }
    if filter & FILTER_CGROUP != 0 && !in_cgroup(task) {
        return false;
    }
    if filter & FILTER_COMM != 0 {
        let want = global(&FILTER_COMM_NAME);
        // SAFETY: `task` is a tp_btf task pointer and the offset is that of `comm`, a char[16].
        let comm: [u8; 16] = unsafe { task_field(task, global(&TASK_COMM_OFFSET)) };
        let mut i = 0;
        while i < 16 {
            if comm[i] != want[i] {
                return false;
            }
            if want[i] == 0 {
                break;
            }
            i += 1;
        }
    }
    true
}

/// Reads a `T` at `addr` in kernel memory; `None` if unreadable.
#[inline(always)]
fn kread<T>(addr: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    unsafe { bpf_probe_read_kernel(addr as *const T) }.ok()
}

/// Whether `task` is in the wanted cgroup v2 or below it: its cgroup's
/// ancestor at the wanted cgroup's level is that cgroup.
#[inline(always)]
fn in_cgroup(task: *const u8) -> bool {
    let f = global(&FILTER_CGROUP_SPEC);
    let Some(css_set) = kread::<u64>(task as u64 + u64::from(f.task_cgroups)) else {
        return false;
    };
    let Some(cgrp) = kread::<u64>(css_set + u64::from(f.dfl_cgrp)) else {
        return false;
    };
    let Some(level) = kread::<i32>(cgrp + u64::from(f.cgroup_level)) else {
        return false;
    };
    if level < f.level as i32 {
        return false;
    }
    let slot = cgrp + u64::from(f.ancestors) + u64::from(f.level) * 8;
    let id = if f.ancestor_ids != 0 {
        kread::<u64>(slot)
    } else {
        kread::<u64>(slot)
            .and_then(|ancestor| kread::<u64>(ancestor + u64::from(f.kn)))
            .and_then(|kn| kread::<u64>(kn + u64::from(f.kn_id)))
    };
    id == Some(f.id)
}

/// Under the filters: whether `(prev, next)` pass the task filters (both true
/// when none is set), or `None` when the switch is not traced at all.
#[inline(always)]
fn selection(
    filter: u32,
    prev: *const u8,
    prev_ids: &TaskIds,
    next: *const u8,
    next_ids: &TaskIds,
) -> Option<(bool, bool)> {
    if filter & FILTER_CPU != 0 {
        // SAFETY: helper without preconditions.
        let cpu = unsafe { bpf_get_smp_processor_id() };
        if CPUS.get(cpu).is_none_or(|&on| on == 0) {
            return None;
        }
    }
    if filter & (FILTER_TGID | FILTER_TID | FILTER_COMM | FILTER_CGROUP) == 0 {
        return Some((true, true));
    }
    let sel = (
        task_selected(filter, prev, prev_ids),
        task_selected(filter, next, next_ids),
    );
    (sel.0 || sel.1).then_some(sel)
}

/// Counts a switch for the process of `task`, `out` (leaving) or in.
#[inline(always)]
fn count_process(cpu: &mut CpuState, task: *const u8, ids: &TaskIds, class: usize, out: bool) {
    if ids.pid == 0 {
        return;
    }
    let tgid = ids.tgid as u32;
    if PROCS.get_ptr_mut(&tgid).is_none() {
        // SAFETY: `task` is a tp_btf task pointer and the offset is that of `comm`, a char[16].
        let comm: [u8; 16] = unsafe { task_field(task, global(&TASK_COMM_OFFSET)) };
        // Another CPU may insert them first; the lookup below settles it.
        let _ = COMMS.insert(&tgid, &comm, BPF_NOEXIST.into());
        let _ = PROCS.insert(&tgid, &ProcCounts::default(), BPF_NOEXIST.into());
    }
    match PROCS.get_ptr_mut(&tgid) {
        // SAFETY: this CPU's value of a live entry; preemption is off.
        Some(counts) => unsafe {
            let counts = &mut *counts;
            let slot = if out {
                counts.out.get_mut(class)
            } else {
                counts.r#in.get_mut(class)
            };
            if let Some(slot) = slot {
                *slot += 1;
            }
        },
        None => cpu.procs_dropped += 1,
    }
}

/// Adds one sample to this CPU's histogram of `metric` for `class`.
#[inline(always)]
fn record(metric: Metric, class: usize, ns: u64) -> Result<(), &'static str> {
    let hist = HISTS.get_ptr_mut(metric.hist_index(class)).ok_or("HISTS")?;
    // SAFETY: this CPU's own value; tracepoints run with preemption off, so
    // nothing else on this CPU touches it meanwhile.
    let hist = unsafe { &mut *hist };
    if let Some(bucket) = hist.buckets.get_mut(bucket_index(ns)) {
        *bucket += 1;
    }
    hist.sum_ns += ns;
    Ok(())
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

    let prev_ids = task_ids(prev);
    let next_ids = task_ids(next);

    let cpu = CPU.get_ptr_mut(0).ok_or("CPU")?;
    // SAFETY: this CPU's own value; preemption is off.
    let cpu = unsafe { &mut *cpu };
    let filter = global(&FILTER);
    let (prev_selected, next_selected) = if filter == 0 {
        (true, true)
    } else if let Some(sel) = selection(filter, prev, &prev_ids, next, &next_ids) {
        sel
    } else {
        // Not traced. The next switch's on-CPU time and this switch's cost
        // would span a task that is not traced: drop them.
        cpu.last_switch_ns = 0;
        cpu.switch_start_ns = 0;
        return Ok(());
    };

    let class = classify(&prev_ids, &next_ids);
    let c = class.index();
    let kind = if is_voluntary(preempt, prev_state) {
        VOLUNTARY
    } else {
        PREEMPTED
    };
    if let Some(slot) = cpu.counts.by_class.get_mut(c).and_then(|k| k.get_mut(kind)) {
        *slot += 1;
    }
    // Per process: only the processes being traced, not their partners.
    if global(&PER_PROCESS) != 0 {
        if prev_selected {
            count_process(cpu, prev, &prev_ids, c, true);
        }
        if next_selected {
            count_process(cpu, next, &next_ids, c, false);
        }
    }
    if global(&METRICS) == 0 {
        return Ok(()); // Classify and count only.
    }
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };

    if measures(Metric::Oncpu) {
        if cpu.last_switch_ns != 0 {
            record(Metric::Oncpu, c, now.saturating_sub(cpu.last_switch_ns))?;
        }
        cpu.last_switch_ns = now;
    }
    if measures(Metric::SwitchCost) {
        cpu.class = class as u32;
        cpu.switch_start_ns = now;
    }
    if measures(Metric::Offcpu) || measures(Metric::Runq) {
        // Idle tasks are never off-CPU or queued in the usual sense: skip them.
        if prev_ids.pid != 0 {
            // SAFETY: `prev` is a trusted tp_btf task pointer.
            let times = unsafe { TASK_TIMES.get(prev, true) };
            // SAFETY: non-null storage of `prev`, ours until the program returns.
            if let Some(times) = unsafe { times.as_mut() } {
                times.offcpu_since = now;
                // Still runnable (preempted or yielding): it waits in the run queue from now.
                times.runq_since = if prev_state == 0 { now } else { 0 };
            }
        }
        if next_ids.pid != 0 {
            // SAFETY: `next` is a trusted tp_btf task pointer.
            let times = unsafe { TASK_TIMES.get(next, false) };
            // SAFETY: non-null storage of `next`, ours until the program returns.
            if let Some(times) = unsafe { times.as_mut() } {
                if measures(Metric::Offcpu) && times.offcpu_since != 0 {
                    record(Metric::Offcpu, c, now.saturating_sub(times.offcpu_since))?;
                }
                if measures(Metric::Runq) && times.runq_since != 0 {
                    record(Metric::Runq, c, now.saturating_sub(times.runq_since))?;
                }
                times.runq_since = 0;
            }
        }
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
    let cpu = CPU.get_ptr_mut(0).ok_or("CPU")?;
    // SAFETY: this CPU's own value, preemption is off.
    let cpu = unsafe { &mut *cpu };
    if cpu.switch_start_ns == 0 {
        return Ok(()); // The switch happened before we attached.
    }
    let cost = now.saturating_sub(cpu.switch_start_ns);
    cpu.switch_start_ns = 0;
    record(Metric::SwitchCost, cpu.class as usize, cost)
}

/// `p` became runnable: it waits in the run queue from now.
#[inline(always)]
fn stamp_runnable(p: *const u8) {
    // SAFETY: `p` is a trusted tp_btf task pointer.
    let times = unsafe { TASK_TIMES.get(p, true) };
    // SAFETY: non-null storage of `p`, ours until the program returns.
    if let Some(times) = unsafe { times.as_mut() } {
        // SAFETY: helper without preconditions.
        times.runq_since = unsafe { bpf_ktime_get_ns() };
    }
}

// include/trace/events/sched.h: TP_PROTO(struct task_struct *p)
#[btf_tracepoint(function = "sched_wakeup")]
pub fn sched_wakeup(ctx: BtfTracePointContext) -> i32 {
    stamp_runnable(ctx.arg(0));
    0
}

// include/trace/events/sched.h: TP_PROTO(struct task_struct *p)
#[btf_tracepoint(function = "sched_wakeup_new")]
pub fn sched_wakeup_new(ctx: BtfTracePointContext) -> i32 {
    stamp_runnable(ctx.arg(0));
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
    let parent = task_ids(ctx.arg(0));
    let child = task_ids(ctx.arg(1));
    let (parent_tgid, child_tgid) = (parent.tgid as u32, child.tgid as u32);
    // SAFETY: plain lookup of a u32 key.
    let parent_traced = unsafe { TGIDS.get(&parent_tgid) }.is_some();
    if parent_tgid != child_tgid && parent_traced && TGIDS.insert(&child_tgid, &1, 0).is_err() {
        error!(&ctx, "TGIDS is full: process {} is not traced", child_tgid);
    }
    0
}

// include/trace/events/sched.h: TP_PROTO(struct task_struct *p)
// When a process is gone (its leader freed), forget its tgid before the
// number can be reused.
#[btf_tracepoint(function = "sched_process_free")]
pub fn sched_process_free(ctx: BtfTracePointContext) -> i32 {
    let p = task_ids(ctx.arg(0));
    if p.pid == p.tgid {
        let _ = TGIDS.remove(&(p.tgid as u32));
    }
    0
}

// include/trace/events/sched.h:
//   TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
// After exec the process has a new name; per-process reports use it.
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    let p: *const u8 = ctx.arg(0);
    let tgid = task_ids(p).tgid as u32;
    // SAFETY: `p` is a tp_btf task pointer and the offset is that of `comm`, a char[16].
    let comm: [u8; 16] = unsafe { task_field(p, global(&TASK_COMM_OFFSET)) };
    // Only processes already counted; the others get their name when first
    // seen. When the map is full the report keeps the older name.
    if PROCS.get_ptr(&tgid).is_some() {
        let _ = COMMS.insert(&tgid, &comm, 0);
    }
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
