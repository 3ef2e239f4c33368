//! tracer: watch real context switches with eBPF, classify each one by the
//! two tasks' processes, and measure what it costs.
//!
//! The binary (`src/main.rs`) is thin; everything it does is here so that
//! tests and benchmarks can drive the same code.

pub mod bench;
pub mod check;
pub mod cli;
pub mod export;
pub mod kernel;
pub mod probe;
pub mod report;
pub mod session;
pub mod snapshot;
pub mod workload;
