//! Types shared by the kernel programs (`tracer-ebpf`) and the CLI (`tracer`).
//!
//! Everything here is `#[repr(C)]` with explicit padding so that the bytes the
//! kernel writes into a map are exactly the bytes userspace reads back.
//! * `class`: the four classes and the rules that pick one;
//! * `metric`: the latencies measured per class;
//! * `hist`: the log-linear histogram buckets;
//! * `values`: the counters and timestamps kept in maps;
//! * `filter`: the filter bits and the cgroup lookup's layout;
//! * `tracepoint`: what the classic-tracepoint probe is told;
//! * `bounds`: the capacity of every bounded map;
//! * `names`: the maps', programs' and globals' names in the objects.
#![no_std]

pub mod bounds;
pub mod class;
pub mod filter;
pub mod hist;
pub mod metric;
pub mod names;
pub mod tracepoint;
pub mod values;

pub use class::Class;
pub use metric::Metric;
