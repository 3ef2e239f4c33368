//! The names by which the CLI finds the kernel programs' maps, programs and
//! load-time globals in the embedded objects. Each constant is spelled as the
//! symbol it names (a program's constant is its function name in capitals);
//! `tracer/tests/objects.rs` checks every one against both objects.

/// Maps.
pub mod map {
    /// `PerCpuArray<CpuState>`, one entry (counters and per-CPU state).
    pub const CPU: &str = "CPU";
    /// `Array<Histogram>`, memory-mapped (`BPF_F_MMAPABLE`): one entry per
    /// CPU, metric and class (`CpuState::hist_base` +
    /// [`crate::metric::Metric::hist_index`]), each written only by its CPU and
    /// read by the CLI through the mapping, without a syscall or a copy.
    pub const HISTS: &str = "HISTS";
    /// `Array<TaskTimes>` indexed by thread id, for `offcpu_ns` and
    /// `runq_latency_ns`: a lookup the verifier inlines, no hash, no helper
    /// call; at most [`crate::bounds::MAX_TID_TIMES`] entries.
    pub const TID_TIMES: &str = "TID_TIMES";
    /// Per-task `TaskTimes` for threads beyond [`TID_TIMES`]: task storage,
    /// or an LRU hash by thread id (object `tracer-lru`: kernels before 5.11,
    /// and the classic-tracepoint probe, which has no task pointers).
    pub const TASK_TIMES: &str = "TASK_TIMES";
    /// `HashMap<u32 tgid, u8>`, the processes to trace.
    pub const TGIDS: &str = "TGIDS";
    /// `HashMap<u32 tid, u8>`, the threads to trace.
    pub const TIDS: &str = "TIDS";
    /// `Array<u8>`, non-zero for the CPUs to trace.
    pub const CPUS: &str = "CPUS";
    /// `HashMap<u32 tgid, ProcCounts>` (`--per-process`; shared by all CPUs).
    pub const PROCS: &str = "PROCS";
    /// `HashMap<u32 tgid, [u8; 16]>`: the name of each process in [`PROCS`],
    /// as of its first switch or its last exec.
    pub const COMMS: &str = "COMMS";
    /// `RingBuf` of `u32` tgids: with `--per-process`, the processes gone
    /// (leader freed) that have a row in [`PROCS`]. Userspace drains it,
    /// keeps their final counts and deletes their rows.
    pub const EXITED: &str = "EXITED";
    /// `HashMap<u32 tid, u32 tgid | TASK_KTHREAD_BIT>`, the classic-tracepoint
    /// probe's view of which process each thread belongs to.
    pub const TASKS: &str = "TASKS";

    /// Every map, as both objects define them.
    pub const ALL: &[&str] = &[
        CPU, HISTS, TID_TIMES, TASK_TIMES, TGIDS, TIDS, CPUS, PROCS, COMMS, EXITED, TASKS,
    ];
}

/// Load-time globals (`EbpfLoader::override_global`).
pub mod global {
    /// Byte offsets of the `task_struct` members read by `sched_switch`,
    /// resolved from the running kernel's BTF.
    pub const TASK_PID_OFFSET: &str = "TASK_PID_OFFSET";
    pub const TASK_TGID_OFFSET: &str = "TASK_TGID_OFFSET";
    pub const TASK_FLAGS_OFFSET: &str = "TASK_FLAGS_OFFSET";
    /// Byte offset of `task_struct.comm`.
    pub const TASK_COMM_OFFSET: &str = "TASK_COMM_OFFSET";
    /// Where tp_btf `sched_switch` reads `prev_state`: the byte offset of
    /// `task_struct.__state` (or `.state`) on kernels whose tracepoint has no
    /// `prev_state` argument (before 5.18), else
    /// [`crate::values::PREV_STATE_FROM_ARGUMENT`].
    pub const TASK_PREV_STATE_OFFSET: &str = "TASK_PREV_STATE_OFFSET";
    /// The metrics measured, a [`crate::metric::Metric::bit`] mask.
    pub const METRICS: &str = "METRICS";
    /// `FILTER_*` bits ([`crate::filter`]).
    pub const FILTER: &str = "FILTER";
    /// `[u8; 16]`, the exact task name for `FILTER_COMM`.
    pub const FILTER_COMM_NAME: &str = "FILTER_COMM_NAME";
    /// `CgroupFilter`, for `FILTER_CGROUP`.
    pub const FILTER_CGROUP_SPEC: &str = "FILTER_CGROUP_SPEC";
    /// `TracepointLayout`, for the classic-tracepoint probe.
    pub const TP_LAYOUT: &str = "TP_LAYOUT";
    /// Non-zero to keep [`super::map::PROCS`].
    pub const PER_PROCESS: &str = "PER_PROCESS";
    /// Non-zero to add the children of traced processes to
    /// [`super::map::TGIDS`] (`-- COMMAND`).
    pub const FOLLOW_CHILDREN: &str = "FOLLOW_CHILDREN";

    /// Every load-time global.
    pub const ALL: &[&str] = &[
        TASK_PID_OFFSET,
        TASK_TGID_OFFSET,
        TASK_FLAGS_OFFSET,
        TASK_COMM_OFFSET,
        TASK_PREV_STATE_OFFSET,
        METRICS,
        FILTER,
        FILTER_COMM_NAME,
        FILTER_CGROUP_SPEC,
        TP_LAYOUT,
        PER_PROCESS,
        FOLLOW_CHILDREN,
    ];
}

/// Programs (the function names in `tracer-ebpf`).
pub mod prog {
    /// The tp_btf probe (`tp_btf.rs`).
    pub const SCHED_SWITCH: &str = "sched_switch";
    pub const SCHED_EXIT: &str = "sched_exit";
    pub const SCHED_WAKING: &str = "sched_waking";
    pub const SCHED_WAKEUP_NEW: &str = "sched_wakeup_new";
    pub const SCHED_PROCESS_FORK: &str = "sched_process_fork";
    pub const SCHED_PROCESS_FREE: &str = "sched_process_free";
    pub const SCHED_PROCESS_EXEC: &str = "sched_process_exec";
    /// The empty programs that measure the floor of overhead benchmarks
    /// (`floor.rs`).
    pub const FLOOR_SWITCH: &str = "floor_switch";
    pub const FLOOR_EXIT: &str = "floor_exit";
    /// The classic-tracepoint probe (`tracepoint.rs`).
    pub const TP_SCHED_SWITCH: &str = "tp_sched_switch";
    pub const RAW_SCHED_EXIT: &str = "raw_sched_exit";
    pub const TP_TASK_NEWTASK: &str = "tp_task_newtask";
    pub const TP_PROCESS_FREE: &str = "tp_process_free";
    pub const TP_PROCESS_EXEC: &str = "tp_process_exec";
    pub const TP_SCHED_WAKING: &str = "tp_sched_waking";
    pub const TP_SCHED_WAKEUP_NEW: &str = "tp_sched_wakeup_new";

    /// Every program, as both objects define them.
    pub const ALL: &[&str] = &[
        SCHED_SWITCH,
        SCHED_EXIT,
        SCHED_WAKING,
        SCHED_WAKEUP_NEW,
        SCHED_PROCESS_FORK,
        SCHED_PROCESS_FREE,
        SCHED_PROCESS_EXEC,
        FLOOR_SWITCH,
        FLOOR_EXIT,
        TP_SCHED_SWITCH,
        RAW_SCHED_EXIT,
        TP_TASK_NEWTASK,
        TP_PROCESS_FREE,
        TP_PROCESS_EXEC,
        TP_SCHED_WAKING,
        TP_SCHED_WAKEUP_NEW,
    ];
}
