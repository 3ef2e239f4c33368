//! Per-task timestamps (`TaskTimes`) in task-local storage (Linux >= 5.11):
//! the value lives in the task and the kernel frees it with the task, so
//! nothing needs cleaning up and nothing can grow without bound.
//! `times_lru.rs` is the same interface for kernels without task storage.

use aya_ebpf::macros::btf_map;
use tracer_common::values::TaskTimes;

use crate::task_storage::TaskStorage;

#[btf_map]
pub static TASK_TIMES: TaskStorage<TaskTimes> = TaskStorage::new();

/// The timestamps of `task` (thread `pid`), created zeroed when `create` and
/// absent; `None` when absent (or when the kernel cannot allocate).
///
/// # Safety
/// `task` must be a `struct task_struct *` the verifier trusts (a tp_btf
/// argument), and the returned reference must not outlive the program run.
#[inline(always)]
pub unsafe fn get(task: *const u8, _pid: u32, create: bool) -> Option<&'static mut TaskTimes> {
    // SAFETY: per this function's contract.
    unsafe { TASK_TIMES.get(task, create).as_mut() }
}

/// Task storage needs the task: nothing by thread id alone (the CLI loads
/// the `tracer-lru` object where that is needed).
///
/// # Safety
/// None; `unsafe` for the same interface as `times_lru.rs`.
#[inline(always)]
pub unsafe fn by_pid(_pid: u32, _create: bool) -> Option<&'static mut TaskTimes> {
    None
}

/// A task is being freed: the kernel drops its storage with it.
#[inline(always)]
pub fn forget(_pid: u32) {}
