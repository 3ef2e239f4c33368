//! What the live tests share.

pub mod probes;
pub mod tracer_cli;
pub mod workloads;
