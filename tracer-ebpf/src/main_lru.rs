//! The same kernel programs as `main.rs`, for kernels without task-local
//! storage (before Linux 5.11): per-task timestamps live in an LRU hash keyed
//! by thread id (`times_lru.rs`). The CLI loads this object only where it
//! cannot create a task-storage map.
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
mod tid_times;
#[path = "times_lru.rs"]
mod times;
mod tp_btf;
mod tracepoint;
mod waits;
