//! Layouts of the counters and timestamps the kernel programs keep in maps
//! and the CLI reads back.

use crate::class::NUM_CLASSES;

/// Per-CPU switch counters, by class and by voluntary/preempted (`[class][kind]`,
/// `kind` is [`crate::class::VOLUNTARY`] or [`crate::class::PREEMPTED`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchCounts {
    pub by_class: [[u64; 2]; NUM_CLASSES],
}

/// Per-CPU state of the kernel programs ([`crate::names::map::CPU`]), in the
/// same map entry as nothing else so one lookup serves a switch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuState {
    /// Counters, as in [`SwitchCounts`].
    pub counts: SwitchCounts,
    /// `bpf_ktime_get_ns()` at the last `sched_switch`, 0 when a switch-cost
    /// sample is not pending.
    pub switch_start_ns: u64,
    /// `bpf_ktime_get_ns()` at the last `sched_switch` on this CPU: when the
    /// current task was switched in (for `oncpu_ns`); 0 before the first.
    pub last_switch_ns: u64,
    /// Class of the last switch.
    pub class: u32,
    /// Index of this CPU's first histogram in [`crate::names::map::HISTS`]
    /// (CPU number x [`crate::metric::NUM_HISTS`]), written by the CLI before
    /// the programs are attached.
    pub hist_base: u32,
    /// Per-process counters that could not be kept because
    /// [`crate::names::map::PROCS`] was full (reported, never silently dropped).
    pub procs_dropped: u64,
    /// Classic-tracepoint probe only: switches whose incoming task's process
    /// was not known (reported, never silently dropped).
    pub unresolved: u64,
    /// `--per-process`: processes gone whose tgid could not be queued in
    /// [`crate::names::map::EXITED`] (it was full). Their rows stay in
    /// `PROCS`, still reported, but never retired.
    pub procs_unretired: u64,
}

/// Per-process switch counters (`--per-process`): one row per process that
/// every CPU adds to atomically (not per CPU, so the table does not grow
/// with the CPU count).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcCounts {
    /// Switches in which one of the process's tasks left the CPU, by class.
    pub out: [u64; NUM_CLASSES],
    /// Switches that brought one of its tasks in, by class.
    pub r#in: [u64; NUM_CLASSES],
}

/// Per-thread timestamps, `bpf_ktime_get_ns()` (CLOCK_MONOTONIC), 0 when
/// not set.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskTimes {
    /// When the thread last left a CPU; 0 if not seen yet (cleared when a
    /// new thread is first queued, so one that gets the id of an exited
    /// thread does not inherit its stamp).
    pub offcpu_since: u64,
    /// When the thread last became runnable: woken (`sched_waking`, or
    /// `sched_wakeup_new` for a new task), or switched out still runnable
    /// (preempted or yielding); 0 when it is running or sleeping.
    pub runq_since: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, only `u64` fields, no padding; every bit pattern is valid.
    unsafe impl aya::Pod for super::SwitchCounts {}
    // SAFETY: `#[repr(C)]`, `u64`/`u32` fields with explicit padding; every bit pattern is valid.
    unsafe impl aya::Pod for super::CpuState {}
    // SAFETY: `#[repr(C)]`, only `u64` fields, no padding; every bit pattern is valid.
    unsafe impl aya::Pod for super::ProcCounts {}
    // SAFETY: `#[repr(C)]`, only `u64` fields, no padding; every bit pattern is valid.
    unsafe impl aya::Pod for crate::hist::Histogram {}
}

/// The value of [`crate::names::global::TASK_PREV_STATE_OFFSET`] that tells
/// tp_btf `sched_switch` to take `prev_state` from the tracepoint's fourth
/// argument.
pub const PREV_STATE_FROM_ARGUMENT: u32 = u32::MAX;
