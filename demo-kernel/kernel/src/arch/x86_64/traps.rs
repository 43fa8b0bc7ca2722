//! The non-#PF exception handlers (arch/x86/kernel/traps.c): #DE, #UD, #GP, #DF, and the
//! reports of unexpected vectors; the register dump and `die`.

use core::sync::atomic::{AtomicUsize, Ordering};

use extable_runtime::arch::x86_64::{trap, PtRegs};
use extable_runtime::{fixup_exception, FaultKind, Trap};

use super::bug::report_bug;
use super::gdt::df_stack_range;
use crate::println;
use crate::report;
use crate::signal::{force_sig, SigInfo, ILL_ILLOPC, SIGILL, SIGSEGV, SI_KERNEL};

/// Signal number of SIGFPE.
const SIGFPE: u32 = 8;
/// `si_code` FPE_INTDIV.
const FPE_INTDIV: u32 = 1;

/// Exceptions taken per vector 0..=31 (for scenarios).
pub static EXCEPTIONS: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];
/// Unexpected vectors reported.
pub static UNEXPECTED: AtomicUsize = AtomicUsize::new(0);
/// The last unexpected vector.
pub static LAST_UNEXPECTED: AtomicUsize = AtomicUsize::new(0);

fn count(vector: u32) {
    EXCEPTIONS[vector as usize].fetch_add(1, Ordering::Relaxed);
}

/// Print the saved registers (Linux's `__show_regs`).
pub fn show_regs(regs: &PtRegs) {
    println!("RIP: {:04x}:{:016x}", regs.cs, regs.rip);
    println!(
        "RSP: {:04x}:{:016x} EFLAGS: {:08x} ORIG_RAX: {:016x}",
        regs.ss, regs.rsp, regs.rflags, regs.orig_rax
    );
    println!(
        "RAX: {:016x} RBX: {:016x} RCX: {:016x}",
        regs.rax, regs.rbx, regs.rcx
    );
    println!(
        "RDX: {:016x} RSI: {:016x} RDI: {:016x}",
        regs.rdx, regs.rsi, regs.rdi
    );
    println!(
        "RBP: {:016x} R08: {:016x} R09: {:016x}",
        regs.rbp, regs.r8, regs.r9
    );
    println!(
        "R10: {:016x} R11: {:016x} R12: {:016x}",
        regs.r10, regs.r11, regs.r12
    );
    println!(
        "R13: {:016x} R14: {:016x} R15: {:016x}",
        regs.r13, regs.r14, regs.r15
    );
}

/// The end of a kernel oops.
pub fn die(why: &str) -> ! {
    report::die(why)
}

/// A trap in kernel mode: fix it through the table, or oops (Linux's `do_trap` →
/// `fixup_exception`, with this CPU's guard → `die`). In user mode: the signal.
fn do_error_trap(regs: &mut PtRegs, error_code: u64, t: Trap, name: &str, sig: SigInfo) {
    count(t.nr);
    if regs.user_mode() {
        println!(
            "traps: demo[1] {} ip:{:x} sp:{:x} error:{:x}",
            name, regs.rip, regs.rsp, error_code
        );
        force_sig(sig);
    }
    if fixup_exception(regs, &t.with_error_code(error_code)).is_ok() {
        return;
    }
    println!("{}: {:04x} [#1] NOPTI", name, error_code);
    show_regs(regs);
    die(name)
}

#[no_mangle]
extern "C" fn exc_divide_error(regs: &mut PtRegs, _error_code: u64, _vector: u64) {
    let sig = SigInfo::new(SIGFPE, FPE_INTDIV, regs.rip as usize);
    do_error_trap(
        regs,
        0,
        Trap::new(trap::DE, FaultKind::Other),
        "divide error",
        sig,
    );
}

#[no_mangle]
extern "C" fn exc_invalid_op(regs: &mut PtRegs, _error_code: u64, _vector: u64) {
    if !regs.user_mode() && report_bug(regs) {
        count(trap::UD);
        return;
    }
    let sig = SigInfo::new(SIGILL, ILL_ILLOPC, regs.rip as usize);
    do_error_trap(
        regs,
        0,
        Trap::new(trap::UD, FaultKind::Undefined),
        "invalid opcode",
        sig,
    );
}

#[no_mangle]
extern "C" fn exc_general_protection(regs: &mut PtRegs, error_code: u64, _vector: u64) {
    let sig = SigInfo::new(SIGSEGV, SI_KERNEL, 0);
    let t = Trap::new(trap::GP, FaultKind::GeneralProtection);
    do_error_trap(regs, error_code, t, "general protection fault", sig);
}

#[no_mangle]
extern "C" fn exc_double_fault(regs: &mut PtRegs, error_code: u64, _vector: u64) {
    count(trap::DF);
    let here = &error_code as *const u64 as u64;
    let ist = df_stack_range();
    println!(
        "double fault: error {:x}, handler running at {:#x} on the IST stack [{:#x}, {:#x}): {}",
        error_code,
        here,
        ist.start,
        ist.end,
        if ist.contains(&here) { "yes" } else { "NO" }
    );
    println!("PANIC: double fault, error_code: {:#x}", error_code);
    show_regs(regs);
    die("double fault")
}

/// Vectors 0..=31 without a handler of their own.
#[no_mangle]
extern "C" fn exc_unexpected(regs: &mut PtRegs, error_code: u64, vector: u64) {
    count(vector as u32);
    UNEXPECTED.fetch_add(1, Ordering::Relaxed);
    LAST_UNEXPECTED.store(vector as usize, Ordering::Relaxed);
    println!(
        "unexpected exception {} (error code {:#x}) at rip {:#x}",
        vector, error_code as i64, regs.rip
    );
    // #DB, #BP and #OF are traps: returning resumes after the instruction. Any other
    // exception would fault again on return.
    if !matches!(vector, 1 | 3 | 4) {
        show_regs(regs);
        die("unexpected exception");
    }
}

/// Vectors 32..=255 (no device is programmed to raise them): reported and ignored, as
/// Linux does for spurious interrupts.
#[no_mangle]
extern "C" fn exc_spurious(regs: &mut PtRegs, error_code: u64, _vector: u64) {
    let vector = error_code as u8;
    UNEXPECTED.fetch_add(1, Ordering::Relaxed);
    LAST_UNEXPECTED.store(vector as usize, Ordering::Relaxed);
    println!(
        "unexpected vector {} (spurious interrupt) at rip {:#x}",
        vector, regs.rip
    );
}
