//! The `virt` machine's devices: the PL011 console, the generic timer and the semihosting
//! exit.

use super::mmu::KIMAGE_VOFFSET;

/// The PL011 UART's physical address on `virt`.
const UART_PHYS: usize = 0x0900_0000;
/// Its address in the kernel's linear map (a Device block of the TTBR1 table).
const UART: usize = KIMAGE_VOFFSET + UART_PHYS;
/// Flag register: transmit FIFO full.
const FR_TXFF: u32 = 1 << 5;

fn putc(b: u8) {
    // SAFETY: the PL011's data and flag registers, mapped as Device memory; polling the
    // flag register before a write has no other effect.
    unsafe {
        while core::ptr::read_volatile((UART + 0x18) as *const u32) & FR_TXFF != 0 {}
        core::ptr::write_volatile(UART as *mut u32, u32::from(b));
    }
}

/// Write bytes to the UART (`\n` as `\r\n`).
pub fn console_write(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            putc(b'\r');
        }
        putc(b);
    }
}

/// Microseconds since the machine started (CNTPCT_EL0 / CNTFRQ_EL0; QEMU starts the
/// counter at 0 with the machine).
pub fn uptime_us() -> u64 {
    let (count, freq): (u64, u64);
    // SAFETY: reads of the generic timer's counter and frequency, no side effects.
    unsafe {
        core::arch::asm!(
            "isb",
            "mrs {c}, cntpct_el0",
            "mrs {f}, cntfrq_el0",
            c = out(reg) count,
            f = out(reg) freq,
            options(nomem, nostack),
        )
    };
    if freq == 0 {
        return 0;
    }
    (u128::from(count) * 1_000_000 / u128::from(freq)) as u64
}

/// Semihosting `SYS_EXIT` (AArch64: the parameter block holds the reason and a status).
const SYS_EXIT: u64 = 0x18;
/// `ADP_Stopped_ApplicationExit`: the program ended; the subcode is its status.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

/// Stop QEMU with exit status `code` (needs `-semihosting`; without it the `hlt` is an
/// exception the kernel reports, and the harness's timeout catches the hang).
pub fn exit(code: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, u64::from(code)];
    // SAFETY: the semihosting call reads the two-doubleword block x1 points to (mapped
    // kernel memory) and stops the machine.
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            in("x0") SYS_EXIT,
            in("x1") block.as_ptr(),
            options(nostack),
        );
    }
    loop {
        // SAFETY: waiting for an event that never comes; nothing else to do.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
}
