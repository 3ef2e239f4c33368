//! Anonymous memory shared with a forked child: the futex token and each
//! side's working set.

use std::{io, ptr::NonNull, sync::atomic::AtomicU32};

/// Anonymous memory shared with a forked child, unmapped on drop.
pub(super) struct Shared {
    ptr: NonNull<u8>,
    len: usize,
    /// `touch` writes one byte every `stride` bytes.
    stride: usize,
}

impl Shared {
    /// Touched once per 64-byte cache line.
    pub(super) fn new(len: usize) -> io::Result<Self> {
        Self::with_stride(len, 64)
    }

    /// Touched once every `stride` bytes (4096: once per page).
    pub(super) fn with_stride(len: usize, stride: usize) -> io::Result<Self> {
        let len = len.max(1);
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Self {
            ptr,
            len,
            stride: stride.max(1),
        })
    }

    pub(super) fn word(&self) -> &AtomicU32 {
        // SAFETY: the mapping is page-aligned, at least 4 bytes, zero-filled,
        // and lives as long as `self`.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().cast()) }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the mapping is plain shared memory; access to the token goes through
// atomics and each working set is touched by one side only.
unsafe impl Sync for Shared {}
// SAFETY: as above.
unsafe impl Send for Shared {}

/// Writes one byte per stride (a 64-byte line, or a page) of the working
/// set.
pub(super) fn touch(ws: Option<&Shared>) {
    if let Some(ws) = ws {
        let base = ws.ptr.as_ptr();
        for off in (0..ws.len).step_by(ws.stride) {
            // SAFETY: `off < len`, inside the mapping, touched by this side only.
            unsafe {
                let p = base.add(off);
                p.write_volatile(p.read_volatile().wrapping_add(1));
            }
        }
    }
}
