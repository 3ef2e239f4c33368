//! The four classes of a context switch.
//!
//! Rules, first match wins (README.md, "How it measures"):
//! 1. `Idle`    — prev or next is the idle task (pid 0);
//! 2. `Kernel`  — prev or next is a kernel thread (`PF_KTHREAD`);
//! 3. `Thread`  — prev and next share a tgid (same process);
//! 4. `Process` — different tgids: an address-space switch.

/// `PF_KTHREAD` from `include/linux/sched.h`. A flag value (ABI-stable since
/// Linux 2.6), not a struct offset, so it is safe to compile in.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// Number of classes; the size of every per-class array.
pub const NUM_CLASSES: usize = 4;

/// Index of the "voluntary" half of a per-class counter pair.
pub const VOLUNTARY: usize = 0;
/// Index of the "preempted" (involuntary) half of a per-class counter pair.
pub const PREEMPTED: usize = 1;

/// Class of one switch. The discriminant is the index used in every map.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Idle = 0,
    Kernel = 1,
    Thread = 2,
    Process = 3,
}

impl Class {
    /// All classes, in map-index order.
    pub const ALL: [Class; NUM_CLASSES] = [Class::Idle, Class::Kernel, Class::Thread, Class::Process];

    /// The name used in reports and JSON keys.
    pub const fn name(self) -> &'static str {
        match self {
            Class::Idle => "idle",
            Class::Kernel => "kernel",
            Class::Thread => "thread",
            Class::Process => "process",
        }
    }

    /// The map index of this class.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// What the classifier needs to know about one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskIds {
    /// `task->pid` (the thread id); 0 only for a CPU's idle task.
    pub pid: i32,
    /// `task->tgid` (the process id).
    pub tgid: i32,
    /// `task->flags`.
    pub flags: u32,
}

/// Classifies a switch from `prev` to `next`. The kernel program and the
/// tests call this same function.
#[inline(always)]
pub fn classify(prev: &TaskIds, next: &TaskIds) -> Class {
    if prev.pid == 0 || next.pid == 0 {
        Class::Idle
    } else if (prev.flags | next.flags) & PF_KTHREAD != 0 {
        Class::Kernel
    } else if prev.tgid == next.tgid {
        Class::Thread
    } else {
        Class::Process
    }
}

/// Whether a switch counts as voluntary, split exactly as the kernel splits
/// `nvcsw`/`nivcsw` in `__schedule()`: not a preemption, and prev is no longer
/// runnable (`prev_state != TASK_RUNNING`).
#[inline(always)]
pub fn is_voluntary(preempt: bool, prev_state: u32) -> bool {
    !preempt && prev_state != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn task(pid: i32, tgid: i32, flags: u32) -> TaskIds {
        TaskIds { pid, tgid, flags }
    }

    #[test]
    fn idle_wins_over_everything() {
        let idle = task(0, 0, PF_KTHREAD);
        let kthread = task(12, 12, PF_KTHREAD);
        let user = task(100, 100, 0);
        assert_eq!(classify(&idle, &user), Class::Idle);
        assert_eq!(classify(&user, &idle), Class::Idle);
        assert_eq!(classify(&kthread, &idle), Class::Idle);
        assert_eq!(classify(&idle, &idle), Class::Idle);
    }

    #[test]
    fn kernel_threads_by_flag_not_by_tgid() {
        let kthread = task(12, 12, PF_KTHREAD | 0x40);
        let user = task(100, 100, 0);
        // Same tgid would make it a thread switch, but PF_KTHREAD comes first.
        let kthread_same_tgid = task(100, 100, PF_KTHREAD);
        assert_eq!(classify(&kthread, &user), Class::Kernel);
        assert_eq!(classify(&user, &kthread), Class::Kernel);
        assert_eq!(classify(&user, &kthread_same_tgid), Class::Kernel);
    }

    #[test]
    fn same_tgid_is_thread_other_is_process() {
        let a1 = task(100, 100, 0);
        let a2 = task(101, 100, 0);
        let b = task(200, 200, 0);
        assert_eq!(classify(&a1, &a2), Class::Thread);
        assert_eq!(classify(&a2, &a1), Class::Thread);
        assert_eq!(classify(&a1, &b), Class::Process);
        // Other flags (e.g. PF_EXITING = 0x4) do not change the class.
        assert_eq!(classify(&task(101, 100, 0x4), &a1), Class::Thread);
    }

    #[test]
    fn voluntary_split_matches_kernel() {
        assert!(is_voluntary(false, 1)); // TASK_INTERRUPTIBLE, not preempted
        assert!(is_voluntary(false, 2)); // TASK_UNINTERRUPTIBLE
        assert!(!is_voluntary(true, 1)); // preempted while going to sleep
        assert!(!is_voluntary(false, 0)); // yield / still runnable
        assert!(!is_voluntary(true, 0));
    }

    #[test]
    fn names_and_indices_are_stable() {
        for (i, class) in Class::ALL.iter().enumerate() {
            assert_eq!(class.index(), i);
        }
        assert_eq!(Class::Thread.name(), "thread");
    }
}
