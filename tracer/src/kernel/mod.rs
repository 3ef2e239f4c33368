//! Access to the running kernel: its BTF, tracefs, privileges, syscalls and
//! its own counters.

pub mod bpf_listing;
pub mod btf;
pub mod privilege;
pub mod procstat;
pub mod sys;
pub mod tracefs;

/// `uname -r` of the running kernel.
pub fn release() -> String {
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
