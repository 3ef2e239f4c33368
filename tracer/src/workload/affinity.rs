//! Where a workload's tasks run: each side pinned to the workload's CPU,
//! and the caller kept off that CPU while it waits.

use std::io;

/// Pins the calling thread to `cpu`. Async-signal-safe.
pub fn pin(cpu: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET on a valid set; out-of-range CPUs are ignored by libc.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Keeps the calling thread off one CPU while it lives; restores the
/// thread's affinity when dropped.
pub(crate) struct CallerAway {
    saved: libc::cpu_set_t,
}

impl CallerAway {
    /// `None` when `cpu` is the only CPU the caller may use.
    pub(crate) fn from(cpu: usize) -> io::Result<Option<Self>> {
        // SAFETY: an all-zero cpu_set_t is a valid empty set.
        let mut saved: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `saved` is a valid, writable cpu_set_t of the size given.
        if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut away = saved;
        // SAFETY: CPU_CLR/CPU_COUNT on a valid set; out-of-range CPUs are ignored.
        let others = unsafe {
            libc::CPU_CLR(cpu, &mut away);
            libc::CPU_COUNT(&away)
        };
        if others == 0 {
            return Ok(None);
        }
        // SAFETY: `away` is a valid cpu_set_t of the size given.
        if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &away) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(Self { saved }))
    }
}

impl Drop for CallerAway {
    fn drop(&mut self) {
        // SAFETY: `saved` is the valid cpu_set_t read in `from`.
        unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.saved) };
    }
}
