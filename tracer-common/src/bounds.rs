//! The capacity of every bounded kernel map, in one place. What does not fit
//! is counted in [`crate::values::CpuState`] and reported.

/// Capacity of [`crate::names::map::TASKS`] (classic-tracepoint probe: live
/// threads, 8 bytes of key and value each, not per CPU).
pub const MAX_TASKS: u32 = 131_072;

/// Kernels without task-local storage (before 5.11): capacity of the LRU
/// hash of per-thread timestamps, [`crate::names::map::TASK_TIMES`] (live
/// threads seen switching; 16-byte values, not per CPU).
pub const MAX_TASK_TIMES: u32 = 65_536;

/// Capacity of [`crate::names::map::TGIDS`]: processes named with `--pid`, or
/// the process tree of `-- COMMAND` (entries go away when a process is freed).
pub const MAX_TGIDS: u32 = 16_384;
/// Capacity of [`crate::names::map::TIDS`].
pub const MAX_TIDS: u32 = 4_096;
/// Highest CPU number + 1 that `--cpu` can select ([`crate::names::map::CPUS`]).
pub const MAX_CPUS: u32 = 4_096;
/// Capacity of [`crate::names::map::PROCS`] and [`crate::names::map::COMMS`]
/// (live processes in a `--per-process` report; exited ones are moved out
/// to userspace). Neither is per CPU: 64-byte counters and 16-byte names,
/// about 2 MiB for the two with the kernel's hash overhead, whatever the
/// CPU count.
pub const MAX_PROCS: u32 = 16_384;

/// Capacity of [`crate::names::map::EXITED`] in bytes: one record (8-byte
/// header, 4-byte tgid padded to 8) per row of [`crate::names::map::PROCS`].
/// Every queued tgid has a row that stays until userspace has read the
/// record, so the ring cannot fill before `PROCS` does (save for a tgid
/// reused and freed again before the drain). A power-of-two multiple of the
/// page size, as the kernel wants.
pub const EXITED_RING_BYTES: u32 = MAX_PROCS * 16;
const _: () = assert!(EXITED_RING_BYTES.is_power_of_two() && EXITED_RING_BYTES >= 65_536);

/// Most entries of [`crate::names::map::TID_TIMES`], an array indexed by
/// thread id that the CLI sizes to the kernel's `pid_max` (16 bytes each:
/// 512 KiB at the usual 32,768, 16 MiB at the cap; not per CPU). Threads with
/// higher ids keep their times in [`crate::names::map::TASK_TIMES`].
pub const MAX_TID_TIMES: u32 = 1 << 20;
