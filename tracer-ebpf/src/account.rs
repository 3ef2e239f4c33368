//! What happens on every traced switch, whichever probe saw it: filters,
//! classification, counters, per-process counts, on-CPU time, and the start
//! of the switch-cost measurement.

use aya_ebpf::{
    bindings::{BPF_NOEXIST, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns},
};
use tracer_common::{
    class::{PREEMPTED, TaskIds, VOLUNTARY, classify},
    filter::{FILTER_CGROUP, FILTER_COMM, FILTER_CPU, FILTER_TGID, FILTER_TID},
    hist::bucket_index,
    metric::Metric,
    values::{CpuState, ProcCounts},
};

use crate::{
    state::{
        COMMS, CPU, CPUS, EXITED, FILTER, FILTER_COMM_NAME, HISTS, METRICS, PER_PROCESS, PROCS, TGIDS, TIDS, global,
        measures,
    },
    task::Task,
};

/// This CPU's state.
#[inline(always)]
pub fn cpu_state() -> Result<&'static mut CpuState, &'static str> {
    let cpu = CPU.get_ptr_mut(0).ok_or("CPU")?;
    // SAFETY: this CPU's own value of a live map; tracepoints run with
    // preemption off, so nothing else on this CPU touches it meanwhile.
    Ok(unsafe { &mut *cpu })
}

/// Whether a task passes every task filter that is on.
#[inline(always)]
fn task_selected<T: Task>(filter: u32, task: &T, ids: &TaskIds) -> bool {
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
    if filter & FILTER_CGROUP != 0 && !task.in_cgroup() {
        return false;
    }
    if filter & FILTER_COMM != 0 {
        let want = global(&FILTER_COMM_NAME);
        let comm = task.comm();
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

/// Whether this CPU passes `--cpu` (true when that filter is off).
#[inline(always)]
fn cpu_selected(filter: u32) -> bool {
    if filter & FILTER_CPU == 0 {
        return true;
    }
    // SAFETY: helper without preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    CPUS.get(cpu).is_some_and(|&on| on != 0)
}

/// Under the task filters: whether `(prev, next)` pass them (both true when
/// none is set), or `None` when neither does.
#[inline(always)]
fn selection<P: Task, N: Task>(
    filter: u32,
    prev: &P,
    prev_ids: &TaskIds,
    next: &N,
    next_ids: &TaskIds,
) -> Option<(bool, bool)> {
    if filter & (FILTER_TGID | FILTER_TID | FILTER_COMM | FILTER_CGROUP) == 0 {
        return Some((true, true));
    }
    let sel = (
        task_selected(filter, prev, prev_ids),
        task_selected(filter, next, next_ids),
    );
    (sel.0 || sel.1).then_some(sel)
}

/// Counts a switch of `class` for the processes of prev and next: only the
/// processes being traced (the flag), not their partners.
#[inline(always)]
fn count_processes<P: Task, N: Task>(
    cpu: &mut CpuState,
    prev: (&P, &TaskIds, bool),
    next: (&N, &TaskIds, bool),
    class: usize,
) {
    if prev.2 {
        count_process(cpu, prev.0, prev.1, class, true);
    }
    if next.2 {
        count_process(cpu, next.0, next.1, class, false);
    }
}

/// Adds one to a counter that several CPUs may add to at once: a BPF atomic
/// add, what C's `__sync_fetch_and_add` compiles to (core's atomic types have
/// no read-modify-write on the BPF target).
///
/// # Safety
/// `p` must point to a live, aligned `u64` in a map value.
#[inline(always)]
unsafe fn atomic_inc(p: *mut u64) {
    // SAFETY: per this function's contract; the previous value is unused, so
    // this is the plain atomic add every kernel with BPF has.
    unsafe { core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(p, 1) };
}

/// Counts a switch for the process of `task`, `out` (leaving) or in.
#[inline(always)]
fn count_process<T: Task>(cpu: &mut CpuState, task: &T, ids: &TaskIds, class: usize, out: bool) {
    if ids.pid == 0 {
        return;
    }
    let tgid = ids.tgid as u32;
    if PROCS.get_ptr_mut(&tgid).is_none() {
        // Another CPU may insert them first; the lookup below settles it.
        let _ = COMMS.insert(&tgid, &task.comm(), BPF_NOEXIST.into());
        let _ = PROCS.insert(&tgid, &ProcCounts::default(), BPF_NOEXIST.into());
    }
    match PROCS.get_ptr_mut(&tgid) {
        // SAFETY: a live entry, valid until the program returns; every CPU
        // adds to it, so atomically (one row per process, not per CPU).
        Some(counts) => unsafe {
            let counts = &mut *counts;
            let slot = if out {
                counts.out.get_mut(class)
            } else {
                counts.r#in.get_mut(class)
            };
            if let Some(slot) = slot {
                atomic_inc(slot);
            }
        },
        None => cpu.procs_dropped += 1,
    }
}

/// A process is gone (its leader was freed; none of its tasks runs again).
/// With `--per-process`, when it has a row in `PROCS`, its tgid is queued in
/// `EXITED` for userspace to keep the row's final counts and delete it, so
/// that `PROCS` holds live processes only. Nobody waits on the ring (it is
/// drained on a timer): no wakeup. When the ring is full the row stays,
/// still reported, and `procs_unretired` counts it.
#[inline(always)]
pub fn retire_process(tgid: u32) {
    if global(&PER_PROCESS) == 0 || PROCS.get_ptr(&tgid).is_none() {
        return;
    }
    if EXITED.output(&tgid, BPF_RB_NO_WAKEUP.into()).is_err()
        && let Ok(cpu) = cpu_state()
    {
        cpu.procs_unretired += 1;
    }
}

/// Adds one sample to this CPU's histogram of `metric` for `class`; this
/// CPU's histograms start at `hist_base` (`CpuState::hist_base`).
#[inline(always)]
pub fn record(hist_base: u32, metric: Metric, class: usize, ns: u64) -> Result<(), &'static str> {
    let hist = HISTS
        .get_ptr_mut(hist_base.wrapping_add(metric.hist_index(class)))
        .ok_or("HISTS")?;
    // SAFETY: a live array element that only this CPU writes (the CLI gives
    // each CPU its own base), and preemption is off; the CLI only reads it.
    let hist = unsafe { &mut *hist };
    if let Some(bucket) = hist.buckets.get_mut(bucket_index(ns)) {
        *bucket += 1;
    }
    hist.sum_ns += ns;
    Ok(())
}

/// A switch that is traced: its class, the time it was seen (0 when no
/// latency is measured), which of its tasks pass the task filters (both
/// without filters), and whether its samples are recorded. A task's
/// latencies are measured only when it passes: on-CPU time for `prev`,
/// off-CPU and run-queue time for `next`.
pub struct Traced {
    pub class: usize,
    /// This CPU's first histogram (`CpuState::hist_base`).
    pub hist_base: u32,
    pub now: u64,
    pub prev_selected: bool,
    pub next_selected: bool,
    /// False on a CPU that `--cpu` leaves out: nothing is counted or
    /// recorded, but the per-thread stamps are kept (`waits`), since a
    /// thread that waits on one CPU may be switched in on another.
    pub record: bool,
}

/// Everything a traced switch does that needs no per-task state. `None` when
/// the filters leave it out (and no per-thread stamps need keeping).
#[inline(always)]
pub fn on_switch<P: Task, N: Task>(
    cpu: &mut CpuState,
    prev: &P,
    prev_ids: &TaskIds,
    next: &N,
    next_ids: &TaskIds,
    voluntary: bool,
) -> Result<Option<Traced>, &'static str> {
    let filter = global(&FILTER);
    let (prev_selected, next_selected) = if filter == 0 {
        (true, true)
    } else if let Some(sel) = selection(filter, prev, prev_ids, next, next_ids) {
        sel
    } else {
        not_traced(cpu);
        return Ok(None);
    };
    let class = classify(prev_ids, next_ids);
    let c = class.index();
    if filter != 0 && !cpu_selected(filter) {
        not_traced(cpu);
        if !(measures(Metric::Offcpu) || measures(Metric::Runq)) {
            return Ok(None);
        }
        return Ok(Some(Traced {
            class: c,
            hist_base: cpu.hist_base,
            // SAFETY: helper without preconditions.
            now: unsafe { bpf_ktime_get_ns() },
            prev_selected,
            next_selected,
            record: false,
        }));
    }

    let kind = if voluntary { VOLUNTARY } else { PREEMPTED };
    if let Some(slot) = cpu.counts.by_class.get_mut(c).and_then(|k| k.get_mut(kind)) {
        *slot += 1;
    }
    if global(&PER_PROCESS) != 0 {
        count_processes(cpu, (prev, prev_ids, prev_selected), (next, next_ids, next_selected), c);
    }
    if global(&METRICS) == 0 {
        // Classify and count only.
        return Ok(Some(Traced {
            class: c,
            hist_base: cpu.hist_base,
            now: 0,
            prev_selected,
            next_selected,
            record: true,
        }));
    }
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if measures(Metric::Oncpu) {
        // The slice that ends is prev's: measured when prev is traced.
        if cpu.last_switch_ns != 0 && prev_selected {
            record(cpu.hist_base, Metric::Oncpu, c, now.saturating_sub(cpu.last_switch_ns))?;
        }
        cpu.last_switch_ns = now;
    }
    // The class of the switch that sched_exit_tp ends.
    cpu.class = class as u32;
    if measures(Metric::SwitchCost) {
        cpu.switch_start_ns = now;
    }
    Ok(Some(Traced {
        class: c,
        hist_base: cpu.hist_base,
        now,
        prev_selected,
        next_selected,
        record: true,
    }))
}

/// A switch that is not traced: the next switch's on-CPU time and this
/// switch's cost would span a task that is not traced, so they are dropped.
#[inline(always)]
pub fn not_traced(cpu: &mut CpuState) {
    cpu.last_switch_ns = 0;
    cpu.switch_start_ns = 0;
}

/// The end of a switch in the incoming task: records `switch_cost_ns`.
#[inline(always)]
pub fn on_switch_end(is_switch: bool) -> Result<(), &'static str> {
    if !is_switch {
        return Ok(()); // __schedule() picked the same task again: no switch.
    }
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let cpu = cpu_state()?;
    if cpu.switch_start_ns != 0 {
        let cost = now.saturating_sub(cpu.switch_start_ns);
        cpu.switch_start_ns = 0;
        record(cpu.hist_base, Metric::SwitchCost, cpu.class as usize, cost)?;
    }
    Ok(())
}
