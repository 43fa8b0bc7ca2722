//! A minimal AArch64 kernel with exception tables: the least a kernel needs to recover from
//! faults with `extable-runtime`. Start your own kernel from here.
//!
//! 1. Boot: QEMU's `-kernel` enters `_start` at EL1 with the MMU off; the boot code sets the
//!    stack, enables the FP/SIMD registers (the target uses them), installs the vector table
//!    and calls [`kmain`]. (A real kernel turns the MMU on next; this one needs no mapping.)
//! 2. The exception vector: `VBAR_EL1` points at `vectors`; a synchronous exception at EL1
//!    saves a [`PtRegs`] frame and calls [`exception`], which hands it to
//!    [`fixup_exception`]; that takes this CPU's guard from the accessor registered at boot
//!    ([`set_guard_accessor`]).
//! 3. The main table: sorted in the image by `extable-tool` (the linker), so
//!    [`table::init_main_table`] only verifies it; nothing writes it.
//! 4. One `#[extable]` probe that faults and recovers, one module table registered and
//!    searched.
//!
//! Run: `cargo build --release` here (with `extable-tool` as the linker, see
//! `.cargo/config.toml`), then `qemu-system-aarch64 -M virt -cpu cortex-a57 -accel tcg
//! -nographic -semihosting -kernel target/aarch64-unknown-none/release/kernel`.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::fmt::Write;

use extable_runtime::arch::aarch64::PtRegs;
use extable_runtime::entry::{ExceptionTableEntry, ENTRY_SIZE};
use extable_runtime::table::{self, register_module, Module, Order};
use extable_runtime::{
    extable, fixup_exception, search_exception_tables, set_guard_accessor, Fault, FaultKind,
    FixupGuard, Trap,
};

/// `println!` to the PL011 UART.
macro_rules! println {
    ($($arg:tt)*) => {{
        let _ = writeln!(Uart, $($arg)*);
    }};
}

/// A physical address with nothing behind it on QEMU's virt machine: a load faults
/// (synchronous external abort).
const UNMAPPED: usize = 0x1_0000_0000;

/// ESR_EL1 exception class of a data abort taken without a change of exception level.
const EC_DATA_ABORT_SAME_EL: u32 = 0x25;

global_asm!(
    r#"
    .pushsection .text.boot, "ax"
    .globl _start
_start:
    adrp x0, boot_stack_top
    add x0, x0, :lo12:boot_stack_top
    mov sp, x0
    mov x0, #(3 << 20)                /* CPACR_EL1.FPEN: no trap on FP/SIMD */
    msr cpacr_el1, x0
    adrp x0, vectors
    add x0, x0, :lo12:vectors
    msr vbar_el1, x0
    isb
    adrp x0, __bss_start              /* clear .bss (the stack is in it: nothing on it yet) */
    add x0, x0, :lo12:__bss_start
    adrp x1, __bss_end
    add x1, x1, :lo12:__bss_end
2:  cmp x0, x1
    b.hs 3f
    str xzr, [x0], #8
    b 2b
3:  bl kmain
    b .
    .popsection

    .pushsection .bss.boot_stack, "aw", @nobits
    .balign 16
    .skip 65536
boot_stack_top:
    .popsection

    /* 16 vectors of 0x80 bytes; only a synchronous exception at EL1 with SP_EL1 (+0x200)
     * is expected. */
    .pushsection .text.vectors, "ax"
    .balign 2048
vectors:
    .rept 4
    .balign 0x80
    b unexpected_entry
    .endr
    .balign 0x80
    b sync_entry
    .rept 11
    .balign 0x80
    b unexpected_entry
    .endr

    /* Save x0-x30, sp, elr and spsr as a PtRegs, call exception(regs), then restore them:
     * the fixup may have rewritten the pc and registers. */
sync_entry:
    sub sp, sp, #(34 * 8)
    stp x0, x1, [sp, #16 * 0]
    stp x2, x3, [sp, #16 * 1]
    stp x4, x5, [sp, #16 * 2]
    stp x6, x7, [sp, #16 * 3]
    stp x8, x9, [sp, #16 * 4]
    stp x10, x11, [sp, #16 * 5]
    stp x12, x13, [sp, #16 * 6]
    stp x14, x15, [sp, #16 * 7]
    stp x16, x17, [sp, #16 * 8]
    stp x18, x19, [sp, #16 * 9]
    stp x20, x21, [sp, #16 * 10]
    stp x22, x23, [sp, #16 * 11]
    stp x24, x25, [sp, #16 * 12]
    stp x26, x27, [sp, #16 * 13]
    stp x28, x29, [sp, #16 * 14]
    add x0, sp, #(34 * 8)
    stp x30, x0, [sp, #16 * 15]
    mrs x0, elr_el1
    mrs x1, spsr_el1
    stp x0, x1, [sp, #16 * 16]
    mov x0, sp
    bl exception
    ldp x0, x1, [sp, #16 * 16]
    msr elr_el1, x0
    msr spsr_el1, x1
    ldp x0, x1, [sp, #16 * 0]
    ldp x2, x3, [sp, #16 * 1]
    ldp x4, x5, [sp, #16 * 2]
    ldp x6, x7, [sp, #16 * 3]
    ldp x8, x9, [sp, #16 * 4]
    ldp x10, x11, [sp, #16 * 5]
    ldp x12, x13, [sp, #16 * 6]
    ldp x14, x15, [sp, #16 * 7]
    ldp x16, x17, [sp, #16 * 8]
    ldp x18, x19, [sp, #16 * 9]
    ldp x20, x21, [sp, #16 * 10]
    ldp x22, x23, [sp, #16 * 11]
    ldp x24, x25, [sp, #16 * 12]
    ldp x26, x27, [sp, #16 * 13]
    ldp x28, x29, [sp, #16 * 14]
    ldr x30, [sp, #16 * 15]
    add sp, sp, #(34 * 8)
    eret

unexpected_entry:
    bl unexpected
    .popsection
    "#
);

// A stand-in for a loaded module: code that reads a caller's pointer, and its own exception
// table in the section `module_ex_table`, which the linker script gathers into writable
// memory as a module loader would hand over the module's relocated table.
global_asm!(
    ".pushsection .text.module_read, \"ax\"",
    ".globl module_read",
    "module_read:",
    "7: ldr x0, [x0]",
    "ret",
    "8: mov x0, #-14",
    "ret",
    ".popsection",
    ".pushsection module_ex_table, \"aw\"",
    ".balign 4",
    ".long 7b - ., 8b - ., {handler} - .",
    ".popsection",
    handler = sym extable_runtime::handlers::default,
);

extern "C" {
    /// The module's code: the word at `addr`, or -14 (`-EFAULT`) when reading it faults.
    fn module_read(addr: usize) -> isize;
    static mut __start_module_ex_table: [ExceptionTableEntry; 0];
    static mut __stop_module_ex_table: [ExceptionTableEntry; 0];
}

/// Read a word that may be unmapped: a fault at the marked load makes this return `Err`.
#[extable]
fn probe(addr: usize) -> Result<u64, Fault> {
    let value: u64;
    // SAFETY: the only memory access is the marked load; a fault there returns `Err`.
    unsafe { asm!("[ex] ldr {v}, [{a}]", a = in(reg) addr, v = out(reg) value) };
    Ok(value)
}

/// Called by `sync_entry` with the saved frame: fix the fault through the exception tables,
/// or stop the machine.
#[no_mangle]
extern "C" fn exception(regs: &mut PtRegs) {
    let (esr, far) = (sysreg_esr(), sysreg_far());
    let class = (esr >> 26) as u32 & 0x3f;
    let trap = if class == EC_DATA_ABORT_SAME_EL {
        Trap::new(class, data_abort_kind(esr)).with_address(far)
    } else {
        Trap::new(class, FaultKind::Other)
    };
    if fixup_exception(regs, &trap.with_error_code(esr)).is_ok() {
        return;
    }
    println!("unhandled exception at {:#x}: {trap:?}", regs.pc);
    exit(FAILURE);
}

/// The fault class of a data abort, from its fault status code (ESR_EL1.DFSC).
fn data_abort_kind(esr: u64) -> FaultKind {
    match esr & 0x3f {
        0x00..=0x07 => FaultKind::NotMapped, // address size or translation fault
        0x0c..=0x0f => FaultKind::Permission,
        0x10 | 0x21 => FaultKind::Bus, // external abort, alignment fault
        _ => FaultKind::Other,
    }
}

#[no_mangle]
extern "C" fn unexpected() -> ! {
    println!("unexpected exception: ESR_EL1 {:#x}", sysreg_esr());
    exit(FAILURE)
}

/// The fixup recursion guard of the one CPU this kernel runs on.
static GUARD: FixupGuard = FixupGuard::new();

/// The running CPU's guard, for [`fixup_exception`]. An SMP kernel keeps one guard per CPU
/// and returns the running CPU's from its per-CPU data.
fn cpu_guard() -> &'static FixupGuard {
    &GUARD
}

#[no_mangle]
extern "C" fn kmain() -> ! {
    // Before anything can fault: without an accessor `fixup_exception` fixes nothing.
    set_guard_accessor(cpu_guard);
    let report = table::init_main_table();
    println!("main table: {} entries, {:?}", report.entries, report.order);
    expect(
        report.order == Order::SortedByTool,
        "main table sorted by extable-tool",
    );

    static WORD: u64 = 0x1234_5678;
    let mapped = probe(&WORD as *const u64 as usize);
    let unmapped = probe(UNMAPPED);
    println!("probe(mapped) = {mapped:x?}, probe({UNMAPPED:#x}) = {unmapped:?}");
    expect(
        matches!(mapped, Ok(0x1234_5678)),
        "probe reads a mapped word",
    );
    expect(
        unmapped.is_err(),
        "probe of an unmapped address returns Err",
    );

    static MODULE: Module = Module::new("example");
    // SAFETY: the module is not registered yet; its table is its own and stays valid and
    // unchanged for the rest of the run.
    let report = unsafe { MODULE.load(module_table(), 0..0) };
    expect(register_module(&MODULE).is_ok(), "module registered");
    let found = search_exception_tables(module_read as *const () as usize).is_some();
    // SAFETY: module_read only reads the address, and its table covers that read.
    let value = unsafe { module_read(UNMAPPED) };
    println!(
        "module table: {} entries; module_read({UNMAPPED:#x}) = {value}",
        report.entries
    );
    expect(
        found && value == -14,
        "module entry found and its fault fixed",
    );

    println!("TEMPLATE OK");
    exit(SUCCESS)
}

/// The module's table, as the linker script placed it (called once: the borrow is unique).
fn module_table() -> &'static mut [ExceptionTableEntry] {
    // Taking the address of an extern static reads nothing.
    let start = core::ptr::addr_of_mut!(__start_module_ex_table) as usize;
    let stop = core::ptr::addr_of_mut!(__stop_module_ex_table) as usize;
    // SAFETY: the linker script puts the module's entries between the two symbols, in
    // writable memory that nothing else refers to.
    unsafe { core::slice::from_raw_parts_mut(start as *mut _, (stop - start) / ENTRY_SIZE) }
}

fn sysreg_esr() -> u64 {
    let value: u64;
    // SAFETY: reading ESR_EL1 at EL1 has no side effects.
    unsafe { asm!("mrs {}, esr_el1", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

fn sysreg_far() -> usize {
    let value: usize;
    // SAFETY: reading FAR_EL1 at EL1 has no side effects.
    unsafe { asm!("mrs {}, far_el1", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Semihosting exit codes: QEMU exits with this status.
const SUCCESS: u32 = 0;
const FAILURE: u32 = 1;

fn expect(ok: bool, what: &str) {
    if !ok {
        println!("FAILED: {what}");
        exit(FAILURE);
    }
}

/// Semihosting `SYS_EXIT` with `ADP_Stopped_ApplicationExit` and a status (needs QEMU's
/// `-semihosting`).
fn exit(code: u32) -> ! {
    let block: [u64; 2] = [0x20026, code as u64];
    // SAFETY: the semihosting call only reads `block`, and ends the machine.
    unsafe { asm!("hlt #0xf000", in("w0") 0x18u32, in("x1") &block, options(nostack)) };
    loop {
        // SAFETY: waiting for an event only stops this CPU.
        unsafe { asm!("wfe", options(nomem, nostack)) };
    }
}

/// The PL011 UART of QEMU's virt machine: data at +0, flags at +0x18 (bit 5: TX full).
struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        const BASE: usize = 0x0900_0000;
        for byte in s.bytes() {
            // SAFETY: the UART's registers, always mapped (the MMU is off); these accesses
            // only drive the UART.
            unsafe {
                while core::ptr::read_volatile((BASE + 0x18) as *const u32) & 0x20 != 0 {}
                core::ptr::write_volatile(BASE as *mut u32, byte as u32);
            }
        }
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("panic: {info}");
    exit(FAILURE)
}
