//! Attaching the programs: which ones this plan needs, in which order, and
//! the helpers that load and attach one program.

use aya::{
    Ebpf,
    maps::{HashMap, MapData},
    programs::{BtfTracePoint, RawTracePoint, TracePoint},
};
use tracer_common::{
    filter::FILTER_TGID,
    names::{map, prog},
    tracepoint::TASK_KTHREAD_BIT,
};

use super::{
    error::ProbeError,
    maps::take_map,
    options::ProbeOptions,
    plan::{Plan, SCHED_EXIT_TP, no_sched_exit_tp},
};
use crate::snapshot::metrics::Metric;

/// `BPF_NOEXIST`: insert only if the key is not there yet.
const BPF_NOEXIST: u64 = 1;

impl Plan {
    /// Attaches the tp_btf programs; the ones that feed sched_switch's state
    /// first, sched_switch last.
    pub(super) fn attach_tp_btf(
        &self,
        ebpf: &mut Ebpf,
        btf: &aya::Btf,
        opts: &ProbeOptions,
        task_storage: bool,
    ) -> Result<(), ProbeError> {
        let by_tgid = opts.filter.bits() & FILTER_TGID != 0;
        if by_tgid || opts.per_process || (!task_storage && self.needs_task_times()) {
            // Forget processes when they are freed, so a reused pid is not
            // traced, queue their per-process rows for retirement, and forget
            // tasks' timestamps where they are not in task storage.
            attach_tp_btf(ebpf, prog::SCHED_PROCESS_FREE, "sched_process_free", btf)?;
        }
        if by_tgid && opts.filter.command {
            // Follow children of traced processes for `-- COMMAND`.
            attach_tp_btf(ebpf, prog::SCHED_PROCESS_FORK, "sched_process_fork", btf)?;
        }
        if opts.per_process {
            attach_tp_btf(ebpf, prog::SCHED_PROCESS_EXEC, "sched_process_exec", btf)?;
        }
        if self.needs_task_times() {
            // New threads start with clean stamps (and wait from there).
            attach_tp_btf(ebpf, prog::SCHED_WAKEUP_NEW, "sched_wakeup_new", btf)?;
        }
        if self.measured.contains(Metric::Runq) {
            attach_tp_btf(ebpf, prog::SCHED_WAKING, "sched_waking", btf)?;
        }
        if self.measured.contains(Metric::SwitchCost) {
            attach_tp_btf(ebpf, prog::SCHED_EXIT, SCHED_EXIT_TP, btf)?;
        }
        attach_tp_btf(ebpf, prog::SCHED_SWITCH, "sched_switch", btf)
    }

    /// Attaches the classic-tracepoint programs. Every thread is known before
    /// the first switch is seen: new ones from task_newtask (attached first),
    /// existing ones seeded from /proc.
    pub(super) fn attach_tracepoint(&mut self, ebpf: &mut Ebpf, opts: &ProbeOptions) -> Result<(), ProbeError> {
        attach_tracepoint(ebpf, prog::TP_PROCESS_FREE, "sched", "sched_process_free")?;
        if opts.per_process {
            attach_tracepoint(ebpf, prog::TP_PROCESS_EXEC, "sched", "sched_process_exec")?;
        }
        attach_tracepoint(ebpf, prog::TP_TASK_NEWTASK, "task", "task_newtask")?;
        let mut map: HashMap<MapData, u32, u32> = take_map(ebpf, map::TASKS)?;
        for t in &self.tasks {
            let value = if t.kthread { t.tgid | TASK_KTHREAD_BIT } else { t.tgid };
            // A thread that exited meanwhile or a full map: the switch
            // program fills in what it meets (or counts it unresolved).
            let _ = map.insert(&t.tid, &value, BPF_NOEXIST);
        }
        log::info!("seeded {} threads from /proc", self.tasks.len());
        if self.needs_task_times() {
            attach_tracepoint(ebpf, prog::TP_SCHED_WAKEUP_NEW, "sched", "sched_wakeup_new")?;
        }
        if self.measured.contains(Metric::Runq) {
            attach_tracepoint(ebpf, prog::TP_SCHED_WAKING, "sched", "sched_waking")?;
        }
        if self.measured.contains(Metric::SwitchCost) && attach_raw(ebpf, prog::RAW_SCHED_EXIT, SCHED_EXIT_TP).is_err()
        {
            self.drop_metric(Metric::SwitchCost, no_sched_exit_tp());
        }
        attach_tracepoint(ebpf, prog::TP_SCHED_SWITCH, "sched", "sched_switch")
    }
}

/// The program named `program`, as its concrete type.
fn program<'a, P>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut P, ProbeError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(program)
        .ok_or_else(|| ProbeError::Missing(format!("program `{program}`")))?
        .try_into()
        .map_err(|source| ProbeError::Program {
            action: "find",
            program,
            source,
        })
}

/// Names the program and the step in a program error.
fn step<T>(
    program: &'static str,
    action: &'static str,
    result: Result<T, aya::programs::ProgramError>,
) -> Result<T, ProbeError> {
    result.map_err(|source| ProbeError::Program {
        action,
        program,
        source,
    })
}

pub(super) fn attach_tp_btf(
    ebpf: &mut Ebpf,
    name: &'static str,
    tracepoint: &str,
    btf: &aya::Btf,
) -> Result<(), ProbeError> {
    let prog: &mut BtfTracePoint = program(ebpf, name)?;
    step(name, "load", prog.load(tracepoint, btf))?;
    step(name, "attach", prog.attach())?;
    log::info!("attached `{name}` to tp_btf/{tracepoint}");
    Ok(())
}

fn attach_tracepoint(ebpf: &mut Ebpf, name: &'static str, category: &str, event: &str) -> Result<(), ProbeError> {
    let prog: &mut TracePoint = program(ebpf, name)?;
    step(name, "load", prog.load())?;
    step(name, "attach", prog.attach(category, event))?;
    log::info!("attached `{name}` to tracepoint {category}/{event}");
    Ok(())
}

fn attach_raw(ebpf: &mut Ebpf, name: &'static str, tracepoint: &str) -> Result<(), ProbeError> {
    let prog: &mut RawTracePoint = program(ebpf, name)?;
    step(name, "load", prog.load())?;
    step(name, "attach", prog.attach(tracepoint))?;
    log::info!("attached `{name}` to raw tracepoint {tracepoint}");
    Ok(())
}
