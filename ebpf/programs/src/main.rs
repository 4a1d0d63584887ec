//! keel's BPF programs. Entry points are thin: they call a `try_*` function
//! and turn any error into the safe verdict for their hook.
#![no_std]
#![no_main]

mod lb;
mod probe;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // BPF programs cannot unwind; the verifier rejects any path that gets here.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
