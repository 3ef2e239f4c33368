//! Layouts of the values in the maps the kernel programs share with the CLI,
//! and the names of those maps and load-time globals.

use crate::class::NUM_CLASSES;

/// Per-CPU switch counters, by class and by voluntary/preempted (`[class][kind]`,
/// `kind` is [`crate::class::VOLUNTARY`] or [`crate::class::PREEMPTED`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchCounts {
    pub by_class: [[u64; 2]; NUM_CLASSES],
}

/// Per-CPU state carried from `sched_switch` to the `sched_exit_tp` that
/// follows it on the same CPU. Userspace never reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PendingSwitch {
    /// `bpf_ktime_get_ns()` at `sched_switch`, 0 when nothing is pending.
    pub start_ns: u64,
    /// Class of that switch.
    pub class: u32,
    pub _pad: u32,
}

/// Map: `PerCpuArray<SwitchCounts>`, one entry.
pub const COUNTS_MAP: &str = "COUNTS";
/// Map: `PerCpuArray<Histogram>`, one entry per class: `switch_cost_ns`.
pub const SWITCH_COST_MAP: &str = "SWITCH_COST";

/// Load-time globals (`EbpfLoader::override_global`): byte offsets of the
/// `task_struct` members read by `sched_switch`, resolved from the running
/// kernel's BTF.
pub const GLOBAL_PID_OFFSET: &str = "TASK_PID_OFFSET";
pub const GLOBAL_TGID_OFFSET: &str = "TASK_TGID_OFFSET";
pub const GLOBAL_FLAGS_OFFSET: &str = "TASK_FLAGS_OFFSET";
/// Load-time global: non-zero when the `sched_exit_tp` program is attached,
/// so `sched_switch` records a start time for it.
pub const GLOBAL_SWITCH_COST: &str = "MEASURE_SWITCH_COST";

/// Program names (the Rust function names in `tracer-ebpf`).
pub const PROG_SCHED_SWITCH: &str = "sched_switch";
pub const PROG_SCHED_EXIT: &str = "sched_exit";

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, only `u64` fields, no padding; every bit pattern is valid.
    unsafe impl aya::Pod for super::SwitchCounts {}
    // SAFETY: `#[repr(C)]`, only `u64` fields, no padding; every bit pattern is valid.
    unsafe impl aya::Pod for crate::hist::Histogram {}
}
