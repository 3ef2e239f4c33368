//! Per-task timestamps (`TaskTimes`) for kernels without task-local storage
//! (before Linux 5.11): an LRU hash keyed by thread id. Entries are deleted
//! when the task is freed (`sched_process_free`), so a reused thread id
//! starts afresh; when the map is full the least recently used entry goes,
//! which loses one sample of that task, never makes a wrong one.

use aya_ebpf::{macros::map, maps::LruHashMap};
use tracer_common::{bounds::MAX_TASK_TIMES, values::TaskTimes};

#[map]
pub static TASK_TIMES: LruHashMap<u32, TaskTimes> = LruHashMap::with_max_entries(MAX_TASK_TIMES, 0);

/// `BPF_NOEXIST`: insert only if the key is not there yet.
const BPF_NOEXIST: u64 = 1;

/// The timestamps of thread `pid`, created zeroed when `create` and absent;
/// `None` when absent.
///
/// # Safety
/// The returned reference must not outlive the program run.
#[inline(always)]
pub unsafe fn get(_task: *const u8, pid: u32, create: bool) -> Option<&'static mut TaskTimes> {
    if let Some(times) = TASK_TIMES.get_ptr_mut(&pid) {
        // SAFETY: a map value, valid until the program returns.
        return unsafe { times.as_mut() };
    }
    if !create {
        return None;
    }
    let zero = TaskTimes {
        offcpu_since: 0,
        runq_since: 0,
    };
    // Another CPU may have inserted it meanwhile: then use that one.
    let _ = TASK_TIMES.insert(&pid, &zero, BPF_NOEXIST);
    // SAFETY: a map value, valid until the program returns.
    TASK_TIMES.get_ptr_mut(&pid).and_then(|times| unsafe { times.as_mut() })
}

/// The timestamps of thread `pid`, as [`get`].
///
/// # Safety
/// As [`get`].
#[inline(always)]
pub unsafe fn by_pid(pid: u32, create: bool) -> Option<&'static mut TaskTimes> {
    // SAFETY: per this function's contract.
    unsafe { get(core::ptr::null(), pid, create) }
}

/// Thread `pid` is being freed: drop its entry before the id can be reused.
#[inline(always)]
pub fn forget(pid: u32) {
    let _ = TASK_TIMES.remove(&pid);
}
