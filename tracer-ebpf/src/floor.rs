//! The floors of the overhead benchmarks (`cargo xtask bench-overhead`):
//! empty tp_btf programs, what any program on the switch path costs before
//! it does anything. Attached only by the hidden `tracer floor` command.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};

/// The floor for overhead benchmarks: an empty program on sched_switch. What
/// any tp_btf program there costs before it does anything.
#[btf_tracepoint(function = "sched_switch")]
pub fn floor_switch(_ctx: BtfTracePointContext) -> i32 {
    0
}

/// The second floor: an empty program on sched_exit_tp, with `floor_switch`
/// what any two programs per switch cost before they do anything.
#[btf_tracepoint(function = "sched_exit_tp")]
pub fn floor_exit(_ctx: BtfTracePointContext) -> i32 {
    0
}
