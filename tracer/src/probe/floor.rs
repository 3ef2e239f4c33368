//! The floor: empty programs on the same tracepoints, for the overhead
//! benchmark's baseline.

use aya::{Ebpf, EbpfLoader};
use tracer_common::names::prog;

use super::{attach::attach_tp_btf, error::ProbeError, object::ebpf_object, options::ProbeKind, plan::SCHED_EXIT_TP};
use crate::kernel::privilege;

/// Loads and attaches only the empty `floor_switch` program on sched_switch
/// (and `floor_exit` on sched_exit_tp when `with_exit`), for overhead
/// benchmarks; detached when the returned value drops.
pub fn attach_floor(with_exit: bool) -> Result<Ebpf, ProbeError> {
    privilege::check()?;
    let btf = aya::Btf::from_sys_fs()?;
    let mut ebpf = EbpfLoader::new()
        .btf(&btf)
        .allow_unsupported_maps()
        .load(ebpf_object(ProbeKind::TpBtf).0)?;
    attach_tp_btf(&mut ebpf, prog::FLOOR_SWITCH, "sched_switch", &btf)?;
    if with_exit {
        attach_tp_btf(&mut ebpf, prog::FLOOR_EXIT, SCHED_EXIT_TP, &btf)?;
    }
    Ok(ebpf)
}
