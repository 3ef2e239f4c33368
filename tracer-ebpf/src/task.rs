//! A task as the filters and counters see it, from either probe.

use aya_ebpf::{helpers::bpf_probe_read_kernel, programs::TracePointContext};
use tracer_common::{class::TaskIds, values::TaskTimes};

use crate::{
    state::{FILTER_CGROUP_SPEC, TASK_COMM_OFFSET, TASK_FLAGS_OFFSET, TASK_PID_OFFSET, TASK_TGID_OFFSET, global},
    tid_times, times,
};

/// One side of a switch.
pub trait Task {
    fn ids(&self) -> TaskIds;
    /// The task name, NUL-padded.
    fn comm(&self) -> [u8; 16];
    /// Whether it is in the `--cgroup` subtree.
    fn in_cgroup(&self) -> bool;
    /// Its off-CPU and run-queue stamps (it is thread `pid`): by thread id,
    /// or beyond that array with the task (`times`), created there if
    /// `create`; `None` if absent (or the kernel cannot allocate).
    fn times(&self, pid: u32, create: bool) -> Option<&'static mut TaskTimes>;
}

/// Reads a `T` at `offset` bytes into a `task_struct`.
///
/// # Safety
/// `task` must be a `task_struct` pointer handed to a tp_btf program and
/// `offset` the BTF offset of a member of type `T`. The verifier turns this
/// into a checked (`PROBE_MEM`) load.
#[inline(always)]
pub unsafe fn task_field<T: Copy>(task: *const u8, offset: u32) -> T {
    // SAFETY: per the function's contract.
    unsafe { core::ptr::read(task.add(offset as usize).cast::<T>()) }
}

/// A `struct task_struct *` handed to a tp_btf program, read at BTF offsets.
#[derive(Clone, Copy)]
pub struct BtfTask(pub *const u8);

impl Task for BtfTask {
    #[inline(always)]
    fn ids(&self) -> TaskIds {
        // SAFETY: a tp_btf task pointer; the offsets are those of `pid`,
        // `tgid` (pid_t) and `flags` (unsigned int).
        unsafe {
            TaskIds {
                pid: task_field(self.0, global(&TASK_PID_OFFSET)),
                tgid: task_field(self.0, global(&TASK_TGID_OFFSET)),
                flags: task_field(self.0, global(&TASK_FLAGS_OFFSET)),
            }
        }
    }

    #[inline(always)]
    fn comm(&self) -> [u8; 16] {
        // SAFETY: a tp_btf task pointer; the offset is that of `comm`, a char[16].
        unsafe { task_field(self.0, global(&TASK_COMM_OFFSET)) }
    }

    /// In the wanted cgroup v2 or below it: the task's cgroup's ancestor at
    /// the wanted cgroup's level is that cgroup.
    #[inline(always)]
    fn in_cgroup(&self) -> bool {
        let f = global(&FILTER_CGROUP_SPEC);
        let Some(css_set) = kread::<u64>(self.0 as u64 + u64::from(f.task_cgroups)) else {
            return false;
        };
        let Some(cgrp) = kread::<u64>(css_set + u64::from(f.dfl_cgrp)) else {
            return false;
        };
        let Some(level) = kread::<i32>(cgrp + u64::from(f.cgroup_level)) else {
            return false;
        };
        if level < f.level as i32 {
            return false;
        }
        let slot = cgrp + u64::from(f.ancestors) + u64::from(f.level) * 8;
        let id = if f.ancestor_ids != 0 {
            kread::<u64>(slot)
        } else {
            kread::<u64>(slot)
                .and_then(|ancestor| kread::<u64>(ancestor + u64::from(f.kn)))
                .and_then(|kn| kread::<u64>(kn + u64::from(f.kn_id)))
        };
        id == Some(f.id)
    }

    #[inline(always)]
    fn times(&self, pid: u32, create: bool) -> Option<&'static mut TaskTimes> {
        // SAFETY: a tp_btf task pointer; the reference lives for this run only.
        tid_times::slot(pid).or_else(|| unsafe { times::get(self.0, pid, create) })
    }
}

/// Reads a `T` at `addr` in kernel memory; `None` if unreadable.
#[inline(always)]
pub fn kread<T>(addr: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    unsafe { bpf_probe_read_kernel(addr as *const T) }.ok()
}

/// A task seen by the classic sched_switch tracepoint: ids resolved through
/// the `TASKS` map, the name read from the event.
pub struct TpTask<'a> {
    pub ids: TaskIds,
    pub ctx: &'a TracePointContext,
    pub comm_offset: u32,
}

impl Task for TpTask<'_> {
    #[inline(always)]
    fn ids(&self) -> TaskIds {
        self.ids
    }

    #[inline(always)]
    fn comm(&self) -> [u8; 16] {
        // SAFETY: the offset of a char[16] field of this event, from its format.
        unsafe { self.ctx.read_at::<[u8; 16]>(self.comm_offset as usize) }.unwrap_or_default()
    }

    /// The CLI refuses `--cgroup` with this probe.
    #[inline(always)]
    fn in_cgroup(&self) -> bool {
        false
    }

    #[inline(always)]
    fn times(&self, pid: u32, create: bool) -> Option<&'static mut TaskTimes> {
        times_by_pid(pid, create)
    }
}

/// The stamps of thread `pid` where no task pointer is at hand (the
/// classic-tracepoint probe, which the CLI loads from the `tracer-lru`
/// object: beyond the array they are in its LRU hash by thread id).
#[inline(always)]
pub fn times_by_pid(pid: u32, create: bool) -> Option<&'static mut TaskTimes> {
    // SAFETY: the reference lives for this run only.
    tid_times::slot(pid).or_else(|| unsafe { times::by_pid(pid, create) })
}
