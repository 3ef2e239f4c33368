//! Per-thread stamps by thread id, in an array the verifier inlines: no
//! hash, no helper call. Threads with higher ids than it holds keep theirs
//! in `TASK_TIMES` (`times`).

use aya_ebpf::{macros::map, maps::Array};
use tracer_common::{bounds::MAX_TID_TIMES, values::TaskTimes};

/// Per-thread stamps by thread id; sized by the CLI (see `tracer_common::bounds::MAX_TID_TIMES`).
#[map]
pub static TID_TIMES: Array<TaskTimes> = Array::with_max_entries(MAX_TID_TIMES, 0);

/// The stamps of thread `pid` in `TID_TIMES`; `None` beyond its size.
#[inline(always)]
pub fn slot(pid: u32) -> Option<&'static mut TaskTimes> {
    // SAFETY: a live array element, valid until the program returns. A
    // thread's stamps are written by the CPU it switches on and by its
    // waker, never at once (a runnable thread is not woken); an aligned u64
    // is never torn.
    TID_TIMES.get_ptr_mut(pid).map(|p| unsafe { &mut *p })
}
