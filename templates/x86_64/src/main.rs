//! A minimal x86_64 kernel with exception tables: the least a kernel needs to recover from
//! faults with `extable-runtime`. Start your own kernel from here.
//!
//! 1. Boot: QEMU's `-kernel` enters `pvh_start32` (PVH note) in 32-bit mode; the boot code
//!    identity-maps the first 1 GiB with 2 MiB pages, enters long mode and calls [`kmain`].
//! 2. The exception vector: an IDT whose #GP and #PF gates save a [`PtRegs`] frame and call
//!    [`exception`], which hands the fault to [`fixup_exception`]; that takes this CPU's guard
//!    from the accessor registered at boot ([`set_guard_accessor`]).
//! 3. The main table: sorted in the image by `extable-tool` (the linker), so
//!    [`table::init_main_table`] only verifies it; nothing writes it.
//! 4. One `#[extable]` probe that faults and recovers, one module table registered and
//!    searched.
//!
//! Run: `cargo build --release` here (with `extable-tool` as the linker, see
//! `.cargo/config.toml`), then
//! `qemu-system-x86_64 -M microvm -accel tcg -nographic -no-reboot -serial stdio
//! -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel target/x86_64-unknown-none/release/kernel`.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::fmt::Write;

use extable_runtime::arch::x86_64::{trap, PtRegs};
use extable_runtime::entry::{ExceptionTableEntry, ENTRY_SIZE};
use extable_runtime::table::{self, register_module, Module, Order};
use extable_runtime::{
    extable, fixup_exception, search_exception_tables, set_guard_accessor, Fault, FaultKind,
    FixupGuard, Trap,
};

/// `println!` to COM1.
macro_rules! println {
    ($($arg:tt)*) => {{
        let _ = writeln!(Serial, $($arg)*);
    }};
}

/// An address the boot page tables leave unmapped (they map the first 1 GiB).
const UNMAPPED: usize = 0x8000_0000;

global_asm!(
    r#"
    .pushsection .note.pvh, "a", @note
    .balign 4
    .long 4, 8, 18                /* namesz "Xen\0", descsz, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start32
    .popsection

    .pushsection .boot.text, "ax"
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    mov %cr4, %eax
    or $0x20, %eax                /* CR4.PAE */
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx         /* EFER.LME */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax          /* CR0.PG | CR0.PE */
    mov %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $start64
    .code64
start64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    lea __bss_start(%rip), %rdi   /* clear .bss (the stack is in it: nothing on it yet) */
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    rep stosb
    lea boot_stack_top(%rip), %rsp
    call kmain
    ud2

    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff      /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff      /* 0x10: data */
boot_gdt_ptr:
    .word boot_gdt_ptr - boot_gdt - 1
    .long boot_gdt
    .popsection

    .pushsection .data.boot_page_tables, "aw"
    .balign 4096
boot_pml4:
    .quad boot_pdpt + 3
    .fill 511, 8, 0
boot_pdpt:
    .quad boot_pd + 3
    .fill 511, 8, 0
boot_pd:
    .set i, 0
    .rept 512
    .quad (i << 21) + 0x83        /* present, writable, 2 MiB page */
    .set i, i + 1
    .endr
    .popsection

    .pushsection .bss.boot_stack, "aw", @nobits
    .balign 16
    .skip 65536
boot_stack_top:
    .popsection

    /* The exception entry: the CPU pushed ss, rsp, rflags, cs, rip and the error code;
     * push the general registers so that the stack holds a PtRegs, call exception(regs,
     * vector), and restore the registers the fixup may have rewritten (rip included). */
    .macro exception_entry name, vector
    .globl \name
\name:
    cld
    push %rdi; push %rsi; push %rdx; push %rcx; push %rax; push %r8; push %r9; push %r10
    push %r11; push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15
    mov %rsp, %rdi
    mov $\vector, %esi
    mov %rsp, %rbx
    and $-16, %rsp
    call exception
    mov %rbx, %rsp
    pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx; pop %r11
    pop %r10; pop %r9; pop %r8; pop %rax; pop %rcx; pop %rdx; pop %rsi; pop %rdi
    add $8, %rsp                  /* the error code */
    iretq
    .endm

    .pushsection .text.exception_entry, "ax"
    exception_entry gp_entry, 13
    exception_entry pf_entry, 14
    .popsection
    "#,
    options(att_syntax)
);

// A stand-in for a loaded module: code that reads a caller's pointer, and its own exception
// table in the section `module_ex_table`, which the linker script gathers into writable
// memory as a module loader would hand over the module's relocated table.
global_asm!(
    ".pushsection .text.module_read, \"ax\"",
    ".globl module_read",
    "module_read:",
    "7: mov rax, qword ptr [rdi]",
    "ret",
    "8: mov rax, -14",
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
    fn gp_entry();
    fn pf_entry();
    static mut __start_module_ex_table: [ExceptionTableEntry; 0];
    static mut __stop_module_ex_table: [ExceptionTableEntry; 0];
}

/// Read a word that may be unmapped: a fault at the marked load makes this return `Err`.
#[extable]
fn probe(addr: usize) -> Result<u64, Fault> {
    let value: u64;
    // SAFETY: the only memory access is the marked load; a fault there returns `Err`.
    unsafe { asm!("[ex] mov {v}, qword ptr [{a}]", a = in(reg) addr, v = out(reg) value) };
    Ok(value)
}

/// Called by the exception entry with the saved frame: fix the fault through the exception
/// tables, or stop the machine.
#[no_mangle]
extern "C" fn exception(regs: &mut PtRegs, vector: u32) {
    let code = regs.orig_rax;
    let trap = if vector == trap::PF {
        let kind = match code & 1 {
            0 => FaultKind::NotMapped,
            _ => FaultKind::Permission,
        };
        Trap::new(vector, kind).with_address(cr2())
    } else {
        Trap::new(vector, FaultKind::GeneralProtection)
    };
    if fixup_exception(regs, &trap.with_error_code(code)).is_ok() {
        return;
    }
    println!("unhandled exception {vector} at {:#x}: {trap:?}", regs.rip);
    exit(FAILURE);
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
    install_idt();

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

/// An interrupt gate (present, ring 0, 64-bit) to `handler` in the code segment 0x08.
const fn gate(handler: usize) -> [u64; 2] {
    let (lo, mid, hi) = (handler & 0xffff, (handler >> 16) & 0xffff, handler >> 32);
    [
        (lo | 0x08 << 16 | 0x8e00 << 32 | mid << 48) as u64,
        hi as u64,
    ]
}

/// Install the IDT: #GP and #PF only; any other exception triple-faults (QEMU exits).
fn install_idt() {
    static mut IDT: [[u64; 2]; 32] = [[0; 2]; 32];
    // SAFETY: runs once, before any exception; the IDT is static, so it outlives its use.
    unsafe {
        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        idt[trap::GP as usize] = gate(gp_entry as *const () as usize);
        idt[trap::PF as usize] = gate(pf_entry as *const () as usize);
        let pointer: (u16, u64) = (core::mem::size_of_val(idt) as u16 - 1, idt.as_ptr() as u64);
        let packed = [pointer.0 as u64 | pointer.1 << 16, pointer.1 >> 48];
        asm!("lidt [{}]", in(reg) &packed, options(readonly, nostack, preserves_flags));
    }
}

fn cr2() -> usize {
    let value: usize;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// isa-debug-exit codes: QEMU exits with `code << 1 | 1`.
const SUCCESS: u32 = 0x10;
const FAILURE: u32 = 0x11;

fn expect(ok: bool, what: &str) {
    if !ok {
        println!("FAILED: {what}");
        exit(FAILURE);
    }
}

fn exit(code: u32) -> ! {
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit device: the write ends the machine.
    unsafe { asm!("out dx, eax", in("dx") 0xf4u16, in("eax") code, options(nomem, nostack)) };
    loop {
        // SAFETY: halting with interrupts off only stops this CPU.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) };
    }
}

/// COM1.
struct Serial;

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            // SAFETY: COM1's line status and data ports; reading and writing them only
            // drives the UART.
            unsafe {
                while {
                    let status: u8;
                    asm!("in al, dx", in("dx") 0x3fdu16, out("al") status, options(nomem, nostack));
                    status & 0x20 == 0
                } {}
                asm!("out dx, al", in("dx") 0x3f8u16, in("al") byte, options(nomem, nostack));
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
