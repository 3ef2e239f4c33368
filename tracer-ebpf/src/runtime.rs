//! What every BPF object needs: a panic handler (never reached: the verifier
//! rejects what could panic) and the license the kernel checks GPL-only
//! helpers against.

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
