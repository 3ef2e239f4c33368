//! Forked children of a process that may have other threads: the child
//! runs only async-signal-safe code (raw syscalls on memory and descriptors
//! prepared before the fork), then `_exit`s.

use std::io;

/// Forks a child that runs `body` and then `_exit(0)`s; returns its pid.
/// `body` must be async-signal-safe.
pub(crate) fn fork_child(body: impl FnOnce()) -> io::Result<u32> {
    // SAFETY: the child only runs `body` (async-signal-safe by contract) and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        body();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    Ok(pid as u32)
}
