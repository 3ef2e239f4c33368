//! The kernel's own accounting of the calling task: its switches
//! (`getrusage`) and its run and wait times (`/proc/thread-self/schedstat`).

/// `(nvcsw, nivcsw)` of the calling thread or process. Async-signal-safe.
pub(crate) fn csw(who: libc::c_int) -> (u64, u64) {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    unsafe { libc::getrusage(who, &mut ru) };
    (ru.ru_nvcsw as u64, ru.ru_nivcsw as u64)
}

/// `(sum_exec_runtime, run_delay)` of the calling thread, in ns, from
/// /proc/thread-self/schedstat; zeros if unreadable. Async-signal-safe: raw
/// syscalls and a stack buffer.
pub(crate) fn schedstat() -> (u64, u64) {
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/thread-self/schedstat".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return (0, 0);
    }
    let mut buf = [0u8; 96];
    // SAFETY: reads into the stack buffer, within its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: closes the descriptor opened above.
    unsafe { libc::close(fd) };
    let mut fields = buf[..n.max(0) as usize]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .map(|f| {
            f.iter().try_fold(0u64, |acc, &d| {
                d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
            })
        });
    (
        fields.next().flatten().unwrap_or(0),
        fields.next().flatten().unwrap_or(0),
    )
}

/// Every switch of this process's threads so far, exited ones included
/// (`getrusage(RUSAGE_SELF)`).
pub fn process_switches() -> u64 {
    let (voluntary, involuntary) = csw(libc::RUSAGE_SELF);
    voluntary + involuntary
}
