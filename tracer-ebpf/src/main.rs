//! tracer's kernel programs.
//!
//! The tp_btf probe (`tp_btf`), used where the kernel has BTF:
//! * `sched_switch`: classifies every switch and counts it per class,
//!   voluntary / preempted; measures `oncpu_ns` of prev and `offcpu_ns` and
//!   `runq_latency_ns` of next; stamps the start of the switch for `sched_exit`.
//! * `sched_exit` (on `sched_exit_tp`, Linux >= 6.16): runs in the incoming
//!   task when `__schedule()` (or `schedule_tail()` for a new task) returns,
//!   and records `switch_cost_ns`.
//! * `sched_waking`, `sched_wakeup_new`: stamp when a task became runnable
//!   (`waits`).
//! * `sched_process_fork`/`_free`/`_exec`: follow `-- COMMAND`'s tree, forget
//!   freed processes (and with `--per-process` queue their rows in `EXITED`
//!   for the CLI to retire), rename processes after exec.
//!
//! The classic-tracepoint probe (`tracepoint`), for kernels without BTF.
//!
//! The floors of the overhead benchmarks, empty programs (`floor`).
//!
//! Per-task timestamps are in an array by thread id (`tid_times`) and,
//! beyond it, in task-local storage (`times`); `main_lru.rs`
//! builds the same programs with an LRU hash instead (`tracer-lru`), for
//! kernels before 5.11, which have no task storage.
//!
//! Nothing leaves the kernel per switch: everything is aggregated in per-CPU
//! maps that the CLI reads and merges (with `--per-process`, one 16-byte
//! record per process that exits). Metrics and filters that are not on
//! are skipped through load-time constants, which the verifier prunes.
#![no_std]
#![no_main]
// Atomic adds to the counters every CPU shares (`account::atomic_inc`).
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod account;
mod floor;
mod runtime;
mod state;
mod task;
mod task_storage;
mod tid_times;
mod times;
mod tp_btf;
mod tracepoint;
mod waits;
