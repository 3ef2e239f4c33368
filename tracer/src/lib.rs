//! tracer: watch real context switches with eBPF, classify each one by the
//! two tasks' processes, and measure what it costs.
//!
//! The binary (`src/main.rs`) is thin; everything it does is here so that
//! tests and benchmarks can drive the same code.

pub mod bench;
pub mod btf;
pub mod check;
pub mod cli;
pub mod command;
pub mod duration;
pub mod exited;
pub mod export;
pub mod filter;
pub mod metrics;
pub mod perf_sched;
pub mod privilege;
pub mod probe;
pub mod procstat;
pub mod report;
pub mod run;
pub mod scenario;
pub mod size;
pub mod snapshot;
pub mod spinners;
pub mod sys;
pub mod tracefs;
pub mod workload;

/// `uname -r` of the running kernel.
pub fn kernel_release() -> String {
    // SAFETY: an all-zero utsname is valid; uname fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return "unknown".into();
    }
    // SAFETY: uname NUL-terminates `release` within the array.
    unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}
