//! Layouts of the values in the maps the kernel programs share with the CLI,
//! and the names of those maps, programs and load-time globals.

use crate::class::NUM_CLASSES;

/// The latencies measured per class (see DESIGN.md, "The latencies, per class").
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// sched_switch -> the incoming task resumes (`sched_exit_tp`) on the same CPU.
    SwitchCost = 0,
    /// Wakeup (or preemption) of `next` -> `next` switched in.
    Runq = 1,
    /// `next`'s last switch-out -> its switch-in.
    Offcpu = 2,
    /// `prev`'s switch-in -> its switch-out.
    Oncpu = 3,
}

/// Number of metrics.
pub const NUM_METRICS: usize = 4;

impl Metric {
    pub const ALL: [Metric; NUM_METRICS] = [Metric::SwitchCost, Metric::Runq, Metric::Offcpu, Metric::Oncpu];

    /// The JSON key.
    pub const fn key(self) -> &'static str {
        match self {
            Metric::SwitchCost => "switch_cost_ns",
            Metric::Runq => "runq_latency_ns",
            Metric::Offcpu => "offcpu_ns",
            Metric::Oncpu => "oncpu_ns",
        }
    }

    /// The name used by `--metrics`.
    pub const fn short(self) -> &'static str {
        match self {
            Metric::SwitchCost => "switch",
            Metric::Runq => "runq",
            Metric::Offcpu => "offcpu",
            Metric::Oncpu => "oncpu",
        }
    }

    /// Bit of this metric in [`GLOBAL_METRICS`].
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// Index of this metric's histogram for `class` in [`HISTS_MAP`].
    pub const fn hist_index(self, class: usize) -> u32 {
        (self as usize * NUM_CLASSES + class) as u32
    }
}

/// Per-CPU switch counters, by class and by voluntary/preempted (`[class][kind]`,
/// `kind` is [`crate::class::VOLUNTARY`] or [`crate::class::PREEMPTED`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchCounts {
    pub by_class: [[u64; 2]; NUM_CLASSES],
}

/// Per-CPU state of the kernel programs, in the same map entry as nothing
/// else so one lookup serves a switch. Userspace never reads it.
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
    pub _pad: u32,
    /// Per-process counters that could not be kept because [`PROCS_MAP`]
    /// was full (reported, never silently dropped).
    pub procs_dropped: u64,
    /// Classic-tracepoint probe only: switches whose incoming task's process
    /// was not known (reported, never silently dropped).
    pub unresolved: u64,
    /// `--per-process`: processes gone whose tgid could not be queued in
    /// [`EXITED_MAP`] (it was full). Their rows stay in [`PROCS_MAP`], still
    /// reported, but never retired.
    pub procs_unretired: u64,
}

/// Classic-tracepoint probe: byte offsets of the fields it reads, from each
/// event's `format` file in tracefs, and what else it needs to know.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TracepointLayout {
    /// sched/sched_switch: `prev_comm`, `prev_pid`, `prev_state`, `next_comm`, `next_pid`.
    pub switch_prev_comm: u32,
    pub switch_prev_pid: u32,
    pub switch_prev_state: u32,
    pub switch_next_comm: u32,
    pub switch_next_pid: u32,
    /// The bit `prev_state` carries when prev was preempted (`TASK_REPORT_MAX`).
    pub switch_preempted_bit: u32,
    /// task/task_newtask: `pid`, `clone_flags`.
    pub newtask_pid: u32,
    pub newtask_clone_flags: u32,
    /// sched/sched_process_free: `pid`.
    pub free_pid: u32,
    /// pid of `kthreadd`, the parent of every kernel thread.
    pub kthreadd: u32,
    /// sched/sched_waking and sched/sched_wakeup_new (same format): `pid`.
    pub wakeup_pid: u32,
}

/// Classic-tracepoint probe: capacity of [`TASKS_MAP`] (live threads).
pub const MAX_TASKS: u32 = 131_072;

/// Kernels without task-local storage (before 5.11): capacity of the LRU
/// hash of per-thread timestamps (live threads seen switching).
pub const MAX_TASK_TIMES: u32 = 65_536;
/// In a [`TASKS_MAP`] value: the task is a kernel thread.
pub const TASK_KTHREAD_BIT: u32 = 1 << 31;

/// Task filters (`FILTER` global bits). A switch is traced when prev or next
/// passes every task filter that is set, and it happens on a selected CPU.
pub const FILTER_TGID: u32 = 1;
pub const FILTER_TID: u32 = 2;
pub const FILTER_COMM: u32 = 4;
pub const FILTER_CPU: u32 = 8;
pub const FILTER_CGROUP: u32 = 16;

/// Capacity of [`TGIDS_MAP`]: processes named with `--pid`, or the process
/// tree of `-- COMMAND` (entries go away when a process is freed).
pub const MAX_TGIDS: u32 = 16_384;
/// Capacity of [`TIDS_MAP`].
pub const MAX_TIDS: u32 = 4_096;
/// Highest CPU number + 1 that `--cpu` can select.
pub const MAX_CPUS: u32 = 4_096;
/// Capacity of [`PROCS_MAP`] (processes in a `--per-process` report).
pub const MAX_PROCS: u32 = 16_384;

/// Capacity of [`EXITED_MAP`] in bytes: one record (8-byte header, 4-byte
/// tgid padded to 8) per row of [`PROCS_MAP`]. Every queued tgid has a row
/// that stays until userspace has read the record, so the ring cannot fill
/// before `PROCS` does (save for a tgid reused and freed again before the
/// drain). A power-of-two multiple of the page size, as the kernel wants.
pub const EXITED_RING_BYTES: u32 = MAX_PROCS * 16;
const _: () = assert!(EXITED_RING_BYTES.is_power_of_two() && EXITED_RING_BYTES >= 65_536);

/// Per-process switch counters (`--per-process`), per CPU.
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

/// Map: `Array<TaskTimes>` indexed by thread id, for `offcpu_ns` and
/// `runq_latency_ns`: a lookup the verifier inlines, no hash, no helper
/// call. The CLI sizes it to the kernel's `pid_max`, at most
/// [`MAX_TID_TIMES`] entries (16 bytes each: 512 KiB at the usual 32,768,
/// 16 MiB at the cap; not per CPU). Threads with higher ids keep theirs in
/// [`TASK_TIMES_MAP`].
pub const TID_TIMES_MAP: &str = "TID_TIMES";
pub const MAX_TID_TIMES: u32 = 1 << 20;

/// Map: `PerCpuArray<CpuState>`, one entry (counters and per-CPU state).
pub const CPU_MAP: &str = "CPU";
/// Map: `PerCpuArray<Histogram>`, one entry per metric and class
/// ([`Metric::hist_index`]).
pub const HISTS_MAP: &str = "HISTS";

/// Load-time globals (`EbpfLoader::override_global`): byte offsets of the
/// `task_struct` members read by `sched_switch`, resolved from the running
/// kernel's BTF.
pub const GLOBAL_PID_OFFSET: &str = "TASK_PID_OFFSET";
pub const GLOBAL_TGID_OFFSET: &str = "TASK_TGID_OFFSET";
pub const GLOBAL_FLAGS_OFFSET: &str = "TASK_FLAGS_OFFSET";
/// Load-time global: the metrics measured, a [`Metric::bit`] mask.
pub const GLOBAL_METRICS: &str = "METRICS";
/// Load-time global: `FILTER_*` bits.
pub const GLOBAL_FILTER: &str = "FILTER";
/// Load-time global: `[u8; 16]`, the exact task name for `FILTER_COMM`.
pub const GLOBAL_COMM: &str = "FILTER_COMM_NAME";
/// Load-time global: byte offset of `task_struct.comm`.
pub const GLOBAL_COMM_OFFSET: &str = "TASK_COMM_OFFSET";
/// Global: where tp_btf `sched_switch` reads `prev_state`: the byte offset of
/// `task_struct.__state` (or `.state`) on kernels whose tracepoint has no
/// `prev_state` argument (before 5.18), else [`PREV_STATE_FROM_ARGUMENT`].
pub const GLOBAL_PREV_STATE_OFFSET: &str = "TASK_PREV_STATE_OFFSET";
/// [`GLOBAL_PREV_STATE_OFFSET`]: the tracepoint's fourth argument.
pub const PREV_STATE_FROM_ARGUMENT: u32 = u32::MAX;
/// Load-time global: `CgroupFilter`, for `FILTER_CGROUP`.
pub const GLOBAL_CGROUP: &str = "FILTER_CGROUP_SPEC";

/// Where a task's cgroup v2 ancestors are, and which one to look for: the
/// offsets come from the running kernel's BTF, the cgroup from `--cgroup`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupFilter {
    /// The wanted cgroup's id (its inode number in cgroupfs).
    pub id: u64,
    /// Its depth below the root (the root is 0).
    pub level: u32,
    /// `task_struct.cgroups`.
    pub task_cgroups: u32,
    /// `css_set.dfl_cgrp`.
    pub dfl_cgrp: u32,
    /// `cgroup.level`.
    pub cgroup_level: u32,
    /// `cgroup.ancestors` (pointers) or `cgroup.ancestor_ids` (ids).
    pub ancestors: u32,
    /// Non-zero: `ancestors` holds ids; zero: pointers to follow to `kn->id`.
    pub ancestor_ids: u32,
    /// `cgroup.kn`.
    pub kn: u32,
    /// `kernfs_node.id`.
    pub kn_id: u32,
}

/// Load-time global: `TracepointLayout`, for the classic-tracepoint probe.
pub const GLOBAL_TP_LAYOUT: &str = "TP_LAYOUT";

/// Load-time global: non-zero to keep [`PROCS_MAP`].
pub const GLOBAL_PER_PROCESS: &str = "PER_PROCESS";
/// Load-time global: non-zero to add the children of traced processes to
/// [`TGIDS_MAP`] (`-- COMMAND`).
pub const GLOBAL_FOLLOW_CHILDREN: &str = "FOLLOW_CHILDREN";

/// Map: `HashMap<u32 tgid, u8>`, the processes to trace.
pub const TGIDS_MAP: &str = "TGIDS";
/// Map: `HashMap<u32 tid, u8>`, the threads to trace.
pub const TIDS_MAP: &str = "TIDS";
/// Map: `Array<u8>`, non-zero for the CPUs to trace.
pub const CPUS_MAP: &str = "CPUS";
/// Map: `PerCpuHashMap<u32 tgid, ProcCounts>`.
pub const PROCS_MAP: &str = "PROCS";
/// Map: `HashMap<u32 tid, u32 tgid | TASK_KTHREAD_BIT>`, the classic-tracepoint
/// probe's view of which process each thread belongs to.
pub const TASKS_MAP: &str = "TASKS";
/// Map: `HashMap<u32 tgid, [u8; 16]>`: the name of each process in
/// [`PROCS_MAP`], as of its first switch or its last exec.
pub const COMMS_MAP: &str = "COMMS";
/// Map: `RingBuf` of `u32` tgids: with `--per-process`, the processes gone
/// (leader freed) that have a row in [`PROCS_MAP`]. Userspace drains it,
/// keeps their final counts and deletes their rows.
pub const EXITED_MAP: &str = "EXITED";
/// Map: per-task `TaskTimes` for threads beyond [`TID_TIMES_MAP`]: task
/// storage, or an LRU hash by thread id (object `tracer-lru`: kernels before
/// 5.11, and the classic-tracepoint probe, which has no task pointers).
pub const TASK_TIMES_MAP: &str = "TASK_TIMES";

/// Program names (the Rust function names in `tracer-ebpf`).
pub const PROG_SCHED_SWITCH: &str = "sched_switch";
pub const PROG_SCHED_EXIT: &str = "sched_exit";
pub const PROG_SCHED_WAKING: &str = "sched_waking";
pub const PROG_SCHED_WAKEUP_NEW: &str = "sched_wakeup_new";
pub const PROG_SCHED_PROCESS_FORK: &str = "sched_process_fork";
pub const PROG_SCHED_PROCESS_FREE: &str = "sched_process_free";
pub const PROG_SCHED_PROCESS_EXEC: &str = "sched_process_exec";
/// The empty program that measures the floor of overhead benchmarks.
pub const PROG_FLOOR_SWITCH: &str = "floor_switch";
pub const PROG_FLOOR_EXIT: &str = "floor_exit";
/// Classic-tracepoint probe programs.
pub const PROG_TP_SCHED_SWITCH: &str = "tp_sched_switch";
pub const PROG_RAW_SCHED_EXIT: &str = "raw_sched_exit";
pub const PROG_TP_TASK_NEWTASK: &str = "tp_task_newtask";
pub const PROG_TP_PROCESS_FREE: &str = "tp_process_free";
pub const PROG_TP_PROCESS_EXEC: &str = "tp_process_exec";
pub const PROG_TP_SCHED_WAKING: &str = "tp_sched_waking";
pub const PROG_TP_SCHED_WAKEUP_NEW: &str = "tp_sched_wakeup_new";

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, only `u64` fields, no padding; every bit pattern is valid.
    unsafe impl aya::Pod for super::SwitchCounts {}
    // SAFETY: `#[repr(C)]`, `u64`/`u32` fields with explicit padding; every bit pattern is valid.
    unsafe impl aya::Pod for super::CpuState {}
    // SAFETY: `#[repr(C)]`, only `u64` fields, no padding; every bit pattern is valid.
    unsafe impl aya::Pod for super::ProcCounts {}
    // SAFETY: `#[repr(C)]`, a `u64` then eight `u32`s, no padding; every bit pattern is valid.
    unsafe impl aya::Pod for super::CgroupFilter {}
    // SAFETY: `#[repr(C)]`, only `u32` fields, no padding; every bit pattern is valid.
    unsafe impl aya::Pod for super::TracepointLayout {}
    // SAFETY: `#[repr(C)]`, only `u64` fields, no padding; every bit pattern is valid.
    unsafe impl aya::Pod for crate::hist::Histogram {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_indices_are_distinct() {
        let mut seen = [false; NUM_METRICS * NUM_CLASSES];
        for m in Metric::ALL {
            for c in 0..NUM_CLASSES {
                let i = m.hist_index(c) as usize;
                assert!(!seen[i]);
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }
}
