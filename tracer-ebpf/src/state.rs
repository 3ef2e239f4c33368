//! Load-time globals and maps, shared by every program.

use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    macros::map,
    maps::{Array, HashMap, PerCpuArray, RingBuf},
};
use tracer_common::{
    bounds::{EXITED_RING_BYTES, MAX_CPUS, MAX_PROCS, MAX_TASKS, MAX_TGIDS, MAX_TIDS},
    filter::CgroupFilter,
    hist::Histogram,
    metric::{Metric, NUM_HISTS},
    tracepoint::TracepointLayout,
    values::{CpuState, PREV_STATE_FROM_ARGUMENT, ProcCounts},
};

// Byte offsets in `struct task_struct`, resolved by the CLI from the running
// kernel's BTF and written here at load time; the verifier sees them as
// constants because `.rodata` is frozen.
#[unsafe(no_mangle)]
pub static TASK_PID_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
pub static TASK_TGID_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
pub static TASK_FLAGS_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
pub static TASK_COMM_OFFSET: u32 = 0;
/// `task_struct.__state` (or `.state`) where sched_switch has no
/// `prev_state` argument; `PREV_STATE_FROM_ARGUMENT` where it has.
#[unsafe(no_mangle)]
pub static TASK_PREV_STATE_OFFSET: u32 = PREV_STATE_FROM_ARGUMENT;
/// The metrics to measure, a `Metric::bit` mask.
#[unsafe(no_mangle)]
pub static METRICS: u32 = 0;
/// `FILTER_*` bits: which filters are on.
#[unsafe(no_mangle)]
pub static FILTER: u32 = 0;
/// The task name for `FILTER_COMM`, NUL-padded.
#[unsafe(no_mangle)]
pub static FILTER_COMM_NAME: [u8; 16] = [0; 16];
/// The cgroup for `FILTER_CGROUP`, and the offsets to find a task's.
#[unsafe(no_mangle)]
pub static FILTER_CGROUP_SPEC: CgroupFilter = CgroupFilter {
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
/// Classic-tracepoint probe: field offsets from tracefs.
#[unsafe(no_mangle)]
pub static TP_LAYOUT: TracepointLayout = TracepointLayout {
    switch_prev_comm: 0,
    switch_prev_pid: 0,
    switch_prev_state: 0,
    switch_next_comm: 0,
    switch_next_pid: 0,
    switch_preempted_bit: 0,
    newtask_pid: 0,
    newtask_clone_flags: 0,
    free_pid: 0,
    kthreadd: 0,
    wakeup_pid: 0,
};
/// Non-zero to count switches per process in `PROCS`.
#[unsafe(no_mangle)]
pub static PER_PROCESS: u8 = 0;
/// Non-zero to add children of traced processes to `TGIDS` (`-- COMMAND`).
#[unsafe(no_mangle)]
pub static FOLLOW_CHILDREN: u8 = 0;

#[map]
pub static CPU: PerCpuArray<CpuState> = PerCpuArray::with_max_entries(1, 0);

#[map]
/// One CPU's worth; the CLI sizes it to every possible CPU.
pub static HISTS: Array<Histogram> = Array::with_max_entries(NUM_HISTS as u32, BPF_F_MMAPABLE);

#[map]
pub static TGIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_TGIDS, 0);

#[map]
pub static TIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_TIDS, 0);

#[map]
pub static CPUS: Array<u8> = Array::with_max_entries(MAX_CPUS, 0);

#[map]
pub static PROCS: HashMap<u32, ProcCounts> = HashMap::with_max_entries(MAX_PROCS, 0);

#[map]
pub static COMMS: HashMap<u32, [u8; 16]> = HashMap::with_max_entries(MAX_PROCS, 0);

/// `--per-process`: tgids of processes gone that have a row in `PROCS`, for
/// userspace to keep their final counts and delete the row.
#[map]
pub static EXITED: RingBuf = RingBuf::with_byte_size(EXITED_RING_BYTES, 0);

/// Classic-tracepoint probe: thread id -> tgid (| `TASK_KTHREAD_BIT`).
#[map]
pub static TASKS: HashMap<u32, u32> = HashMap::with_max_entries(MAX_TASKS, 0);

/// Reads a load-time global. A volatile read keeps the compiler from folding
/// the placeholder value in.
#[inline(always)]
pub fn global<T: Copy>(g: &'static T) -> T {
    // SAFETY: `g` is a valid, aligned `&'static T`.
    unsafe { core::ptr::read_volatile(g) }
}

#[inline(always)]
pub fn measures(metric: Metric) -> bool {
    global(&METRICS) & metric.bit() != 0
}
