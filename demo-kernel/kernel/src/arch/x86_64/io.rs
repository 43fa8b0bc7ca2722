//! Port I/O: the COM1 serial console, QEMU's isa-debug-exit, the PIT for TSC calibration.

/// Write a byte to an I/O port.
pub fn outb(port: u16, value: u8) {
    // SAFETY: port I/O to the fixed PC devices this module drives has no memory effects.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nostack, preserves_flags))
    };
}

/// Read a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for `outb`.
    unsafe {
        core::arch::asm!("in al, dx", in("dx") port, out("al") value, options(nostack, preserves_flags))
    };
    value
}

/// Write a 32-bit value to an I/O port.
pub fn outl(port: u16, value: u32) {
    // SAFETY: as for `outb`.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack, preserves_flags))
    };
}

const COM1: u16 = 0x3f8;
const LSR_THRE: u8 = 1 << 5;

/// Send bytes to COM1, polling the line status register.
pub fn serial_write(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            serial_put(b'\r');
        }
        serial_put(b);
    }
}

fn serial_put(b: u8) {
    while inb(COM1 + 5) & LSR_THRE == 0 {
        core::hint::spin_loop();
    }
    outb(COM1, b);
}

/// The isa-debug-exit device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
const DEBUG_EXIT: u16 = 0xf4;

/// Stop QEMU: it exits with status `(code << 1) | 1`, so no code reads as a plain 0.
pub fn qemu_exit(code: u32) -> ! {
    outl(DEBUG_EXIT, code);
    // Without the device (or under another machine) just halt.
    loop {
        // SAFETY: halting with interrupts masked stops this CPU; nothing follows.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}

/// Read the time-stamp counter.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only reads the counter.
    unsafe {
        core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

const PIT_CH0: u16 = 0x40;
const PIT_CMD: u16 = 0x43;
/// The PIT's input clock.
const PIT_HZ: u64 = 1_193_182;

fn pit_read() -> u16 {
    outb(PIT_CMD, 0x00); // latch channel 0
    let lo = inb(PIT_CH0);
    let hi = inb(PIT_CH0);
    u16::from_le_bytes([lo, hi])
}

/// TSC ticks per microsecond, measured against the PIT over about 2 ms (channel 0 counting
/// down from 0xffff in mode 2; interrupts stay masked).
pub fn calibrate_tsc_per_us() -> u64 {
    outb(PIT_CMD, 0x34); // channel 0, lo/hi, mode 2
    outb(PIT_CH0, 0xff);
    outb(PIT_CH0, 0xff);
    let wanted: u64 = PIT_HZ * 2 / 1000;
    let start_pit = pit_read();
    let start_tsc = rdtsc();
    let mut elapsed: u64 = 0;
    let mut last = start_pit;
    let mut spins = 0u32;
    while elapsed < wanted {
        let now = pit_read();
        elapsed += u64::from(last.wrapping_sub(now));
        last = now;
        spins += 1;
        if spins > 1_000_000 {
            // No PIT: assume a 1 GHz TSC rather than hang.
            return 1000;
        }
    }
    let tsc = rdtsc() - start_tsc;
    (tsc * PIT_HZ / (elapsed * 1_000_000)).max(1)
}
