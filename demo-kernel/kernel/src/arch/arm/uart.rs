//! The PL011 UART of QEMU `virt` (physical 0x0900_0000): polled transmit only.
//!
//! Before the MMU is on the UART is reached at its physical address; `mmu::init` maps it at
//! [`UART_VIRT`] in the kernel half and switches [`set_base`] to it.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Physical address of the PL011 on QEMU `virt`.
pub const UART_PHYS: usize = 0x0900_0000;
/// Where the kernel maps the UART once the MMU is on (a device section in the kernel half).
pub const UART_VIRT: usize = 0xf900_0000;

/// Data register offset.
const UARTDR: usize = 0x00;
/// Flag register offset.
const UARTFR: usize = 0x18;
/// Flag register: transmit FIFO full.
const FR_TXFF: u32 = 1 << 5;

static BASE: AtomicUsize = AtomicUsize::new(UART_PHYS);

/// Use `base` as the UART's address from now on.
pub fn set_base(base: usize) {
    BASE.store(base, Ordering::Relaxed);
}

/// Send one byte, waiting while the transmit FIFO is full.
pub fn putc(byte: u8) {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: `base` is the PL011's address, mapped as Device memory (or the MMU is off);
    // both registers are 32-bit and naturally aligned.
    unsafe {
        while core::ptr::read_volatile((base + UARTFR) as *const u32) & FR_TXFF != 0 {}
        core::ptr::write_volatile((base + UARTDR) as *mut u32, u32::from(byte));
    }
}
