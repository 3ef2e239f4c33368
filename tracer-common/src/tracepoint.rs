//! What the classic-tracepoint probe (kernels without BTF) is told about the
//! running kernel, and how it marks kernel threads.

/// Byte offsets of the fields the probe reads, from each event's `format`
/// file in tracefs ([`crate::names::global::TP_LAYOUT`]), and what else it
/// needs to know.
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

/// In a [`crate::names::map::TASKS`] value: the task is a kernel thread.
pub const TASK_KTHREAD_BIT: u32 = 1 << 31;

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, only `u32` fields, no padding; every bit pattern is valid.
unsafe impl aya::Pod for TracepointLayout {}
