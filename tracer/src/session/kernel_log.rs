//! Kernel-side diagnostics (aya-log) forwarded to the `log` output.

use tokio::io::unix::AsyncFd;

/// Forwards kernel-side diagnostics (aya-log) to the `log` output.
pub(super) fn spawn(logger: aya_log::EbpfLogger<&'static dyn log::Log>) {
    // SAFETY: the logger owns its ring-buffer fd for as long as the AsyncFd
    // holds it, and flushing neither closes nor replaces that fd.
    let registered = unsafe { AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) };
    let mut logger = match registered {
        Ok(fd) => fd,
        Err(e) => {
            log::warn!("kernel-side diagnostics unavailable: {e}");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = logger.readable_mut().await else {
                return;
            };
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    });
}
