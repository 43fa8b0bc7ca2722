//! Synchronous exceptions other than aborts, and the death of the kernel, after Linux's
//! arch/arm64/kernel/entry-common.c and traps.c: `el1h_64_sync_handler` /
//! `el0t_64_sync_handler` dispatching on the exception class, system calls, undefined
//! instructions with their hooks (`register_undef_hook`, `call_undef_hook`), BRK
//! (SIGTRAP from EL0, BUG/WARN at EL1), `arm64_force_sig_fault`, `die` with `__show_regs`,
//! and `bad_mode` for the vectors that are never expected.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use extable_runtime::arch::aarch64::PtRegs;

use super::fault::{
    self, esr_class_str, esr_ec, esr_iss, EC_BRK64, EC_DABT_CUR, EC_DABT_LOW, EC_IABT_CUR,
    EC_IABT_LOW, EC_PC_ALIGN, EC_SP_ALIGN, EC_SVC64, EC_SYS64, EC_UNKNOWN, ESR_FNV,
};
use super::{bug, smp, Frame, PSR_MODE_EL1H, PSR_MODE_MASK, PSR_PAN_BIT};
use crate::cell::HookList;
use crate::println;
use crate::report;
use crate::signal::{
    force_sig, SigInfo, BUS_ADRALN, ILL_ILLOPC, SIGBUS, SIGILL, SIGTRAP, TRAP_BRKPT,
};

/// `MSR PAN, #1` (ARMv8.1), encoded so that the assembler needs no `.arch` change.
macro_rules! msr_pan_1 {
    () => {
        ".inst 0xd500419f"
    };
}

/// `MSR PAN, #0`.
macro_rules! msr_pan_0 {
    () => {
        ".inst 0xd500409f"
    };
}

/// Turn PSTATE.PAN on or off on this CPU.
pub fn set_pan(on: bool) {
    // SAFETY: PAN only restricts EL1 accesses to EL0-accessible pages; the kernel's user
    // accesses use the unprivileged LDTR/STTR forms, which PAN does not affect.
    unsafe {
        if on {
            core::arch::asm!(msr_pan_1!(), options(nomem, nostack));
        } else {
            core::arch::asm!(msr_pan_0!(), options(nomem, nostack));
        }
    }
}

/// Whether PSTATE.PAN is set on this CPU (the PAN special register, S3_0_C4_C2_3).
pub fn pan_enabled() -> bool {
    let v: u64;
    // SAFETY: reads the PAN special register, no side effects.
    unsafe { core::arch::asm!("mrs {}, s3_0_c4_c2_3", out(reg) v, options(nomem, nostack)) };
    v & PSR_PAN_BIT != 0
}

/// MIDR_EL1.
pub fn read_midr() -> u64 {
    let v: u64;
    // SAFETY: reads MIDR_EL1, no side effects.
    unsafe { core::arch::asm!("mrs {}, midr_el1", out(reg) v, options(nomem, nostack)) };
    v
}

// ---------------------------------------------------------------------------------------
// Undefined-instruction hooks.

/// An undefined-instruction hook (Linux's `struct undef_hook`): it runs for an instruction
/// with `instr & instr_mask == instr_val` trapped with `pstate & pstate_mask == pstate_val`.
pub struct UndefHook {
    /// Which instruction bits to compare.
    pub instr_mask: u32,
    /// Their expected value.
    pub instr_val: u32,
    /// Which PSTATE bits to compare (the mode).
    pub pstate_mask: u64,
    /// Their expected value.
    pub pstate_val: u64,
    /// The handler: `true` when it emulated the instruction (and moved the pc on).
    pub func: fn(&mut PtRegs, u32) -> bool,
}

/// The registered hooks.
static HOOKS: HookList<UndefHook, 8> = HookList::new();

/// Add `hook` (Linux's `register_undef_hook`); `false` when the list is full. Registering
/// a hook twice is a no-op.
pub fn register_undef_hook(hook: &'static UndefHook) -> bool {
    HOOKS.register(hook)
}

/// Remove `hook` (Linux's `unregister_undef_hook`).
pub fn unregister_undef_hook(hook: &'static UndefHook) {
    HOOKS.unregister(hook);
}

/// Run the first registered hook that matches (Linux's `call_undef_hook`).
fn call_undef_hook(regs: &mut PtRegs, instr: u32) -> bool {
    let hook = HOOKS.find(|h| {
        instr & h.instr_mask == h.instr_val && regs.pstate & h.pstate_mask == h.pstate_val
    });
    hook.is_some_and(|h| (h.func)(regs, instr))
}
/// What the last undefined-instruction trap saw, for the scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastUndef {
    /// The instruction, 0 when it could not be read.
    pub instr: u32,
    /// Its address.
    pub pc: usize,
    /// The exception class it came with (unknown, or a trapped MRS).
    pub ec: u32,
}

static UNDEF_COUNT: AtomicUsize = AtomicUsize::new(0);
static LAST_INSTR: AtomicU32 = AtomicU32::new(0);
static LAST_PC: AtomicUsize = AtomicUsize::new(0);
static LAST_EC: AtomicU32 = AtomicU32::new(0);

/// Undefined-instruction traps since boot.
pub fn undef_count() -> usize {
    UNDEF_COUNT.load(Ordering::Relaxed)
}

/// The last undefined-instruction trap.
pub fn last_undef() -> LastUndef {
    LastUndef {
        instr: LAST_INSTR.load(Ordering::Relaxed),
        pc: LAST_PC.load(Ordering::Relaxed),
        ec: LAST_EC.load(Ordering::Relaxed),
    }
}

/// The user instruction at `pc`, read with the uaccess primitives.
fn user_instr(pc: usize) -> Option<u32> {
    crate::uaccess::get_user(crate::uaccess::UserPtr::<u32>::new(pc)).ok()
}

/// The MRS/MSR/SYS instruction a trapped-system-instruction syndrome (EC 0x18) describes,
/// rebuilt from its ISS (Op0, Op2, Op1, CRn, Rt, CRm, direction), as Linux's
/// `do_sysinstr` reads it from the ESR rather than from user memory.
pub fn sys64_instr(esr: u64) -> u32 {
    let iss = esr_iss(esr) as u32;
    let field = |shift: u32, bits: u32| (iss >> shift) & ((1 << bits) - 1);
    let (op0, op2, op1) = (field(20, 2), field(17, 3), field(14, 3));
    let (crn, rt, crm, read) = (field(10, 4), field(5, 5), field(1, 4), field(0, 1));
    0xd500_0000 | read << 21 | op0 << 19 | op1 << 16 | crn << 12 | crm << 8 | op2 << 5 | rt
}

/// An undefined (or trapped system) instruction from EL0 (Linux's `do_el0_undef` /
/// `do_el0_sys`): the instruction (from the syndrome for a trapped system instruction,
/// else read at the pc), the hooks, else SIGILL with ILL_ILLOPC.
fn do_el0_undef(f: &mut Frame) {
    let pc = f.regs.pc as usize;
    let instr = if esr_ec(f.esr) == EC_SYS64 {
        Some(sys64_instr(f.esr))
    } else {
        user_instr(pc)
    };
    UNDEF_COUNT.fetch_add(1, Ordering::Relaxed);
    LAST_INSTR.store(instr.unwrap_or(0), Ordering::Relaxed);
    LAST_PC.store(pc, Ordering::Relaxed);
    LAST_EC.store(esr_ec(f.esr), Ordering::Relaxed);
    if instr.is_some_and(|i| call_undef_hook(&mut f.regs, i)) {
        return;
    }
    arm64_force_sig_fault(
        SigInfo::new(SIGILL, ILL_ILLOPC, pc),
        "undefined instruction",
        f.esr,
    )
}

// ---------------------------------------------------------------------------------------
// The handlers entry.S calls.

/// A synchronous exception taken at EL1 with SP_EL1 (Linux's `el1h_64_sync_handler`).
///
/// # Safety
/// `frame` must point to the frame `kernel_entry` built on the stack.
#[no_mangle]
pub unsafe extern "C" fn el1h_64_sync_handler(frame: *mut Frame) {
    // SAFETY: the entry code passes its frame, live and exclusively ours until we return.
    let f = unsafe { &mut *frame };
    let esr = f.esr;
    match esr_ec(esr) {
        EC_DABT_CUR | EC_IABT_CUR => fault::do_mem_abort(abort_address(f), esr, f),
        EC_SP_ALIGN | EC_PC_ALIGN => die("Oops - SP/PC alignment exception", f, esr),
        EC_BRK64 => {
            if !bug::bug_handler(f, esr) {
                die("Oops - BRK", f, esr)
            }
        }
        EC_UNKNOWN => die("Oops - Undefined instruction", f, esr),
        _ => panic_unhandled(f, VECTOR_NAMES[4]),
    }
}

/// A synchronous exception taken from EL0 (Linux's `el0t_64_sync_handler`).
///
/// # Safety
/// `frame` must point to the frame `kernel_entry` built on the stack.
#[no_mangle]
pub unsafe extern "C" fn el0t_64_sync_handler(frame: *mut Frame) {
    // SAFETY: the entry code passes its frame, live and exclusively ours until we return.
    let f = unsafe { &mut *frame };
    let esr = f.esr;
    match esr_ec(esr) {
        EC_SVC64 => el0_svc(f),
        EC_DABT_LOW | EC_IABT_LOW => fault::do_mem_abort(abort_address(f), esr, f),
        EC_SP_ALIGN => arm64_force_sig_fault(
            SigInfo::new(SIGBUS, BUS_ADRALN, f.regs.sp as usize),
            "SP/PC alignment exception",
            esr,
        ),
        EC_PC_ALIGN => arm64_force_sig_fault(
            SigInfo::new(SIGBUS, BUS_ADRALN, f.far as usize),
            "SP/PC alignment exception",
            esr,
        ),
        EC_UNKNOWN | EC_SYS64 => do_el0_undef(f),
        EC_BRK64 => arm64_force_sig_fault(
            SigInfo::new(SIGTRAP, TRAP_BRKPT, f.regs.pc as usize),
            "User debug trap",
            esr,
        ),
        _ => arm64_force_sig_fault(
            SigInfo::new(SIGILL, ILL_ILLOPC, f.regs.pc as usize),
            "Oops - bad_el0_sync",
            esr,
        ),
    }
}

/// The fault address of an abort: FAR_EL1, unless the syndrome says it is not valid (FnV),
/// then 0.
fn abort_address(f: &Frame) -> usize {
    if f.esr & ESR_FNV != 0 {
        0
    } else {
        f.far as usize
    }
}

/// A system call (`svc #0`, number in x8, arguments in x0-x2, result in x0, as Linux's
/// arm64 ABI).
fn el0_svc(f: &mut Frame) {
    let r = &f.regs.regs;
    let args = [r[0] as usize, r[1] as usize, r[2] as usize];
    let ret = crate::task::syscall(r[8] as usize, args);
    f.regs.regs[0] = ret as u64;
}

/// Signal the user task for a fault (Linux's `arm64_force_sig_fault`, with the
/// `arm64_show_signal` line: the task, the exception class, the syndrome, what happened).
pub fn arm64_force_sig_fault(info: SigInfo, what: &str, esr: u64) -> ! {
    println!(
        "user[1]: unhandled exception: {}, ESR {:#018x}, {}",
        esr_class_str(esr_ec(esr)),
        esr,
        what
    );
    force_sig(info)
}

// ---------------------------------------------------------------------------------------
// die.

/// PSTATE as Linux's `__show_regs` prints it.
fn print_pstate(pstate: u64) {
    let flag = |bit: u32, c: u8| {
        if pstate & (1 << bit) != 0 {
            c.to_ascii_uppercase() as char
        } else {
            c as char
        }
    };
    let sign = |bit: u32| if pstate & (1 << bit) != 0 { '+' } else { '-' };
    println!(
        "pstate: {:08x} ({}{}{}{} {}{}{}{} {}PAN {}UAO {}TCO {}DIT {}SSBS BTYPE={})",
        pstate,
        flag(31, b'n'),
        flag(30, b'z'),
        flag(29, b'c'),
        flag(28, b'v'),
        flag(9, b'd'),
        flag(8, b'a'),
        flag(7, b'i'),
        flag(6, b'f'),
        sign(22),
        sign(23),
        sign(25),
        sign(24),
        sign(12),
        ["--", "jc", "-c", "j-"][((pstate >> 10) & 3) as usize],
    );
}

/// Print the saved registers (Linux's `__show_regs`).
pub fn show_regs(f: &Frame) {
    let r = &f.regs;
    print_pstate(r.pstate);
    println!("pc : {:016x}", r.pc);
    println!("lr : {:016x}", r.regs[30]);
    println!("sp : {:016x}", r.sp);
    let mut i: i32 = 29;
    while i >= 0 {
        crate::print!("x{:<2}: {:016x}", i, r.regs[i as usize]);
        while i % 3 != 0 {
            i -= 1;
            crate::print!(" x{:<2}: {:016x}", i, r.regs[i as usize]);
        }
        println!();
        i -= 1;
    }
}

static DIE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The kernel cannot go on (Linux's `die`): "Internal error", the registers, the end of the
/// oops through the shared report (failure status).
pub fn die(what: &str, f: &Frame, esr: u64) -> ! {
    let n = DIE_COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    println!("Internal error: {}: {:016x} [#{}] SMP", what, esr, n);
    println!("Modules linked in:");
    println!(
        "CPU: {} PID: 0 Comm: swapper/{}",
        smp::cpu_id(),
        smp::cpu_id()
    );
    show_regs(f);
    println!("Kernel panic - not syncing: {}: Fatal exception", what);
    report::die(what)
}

/// The vectors by their offset / 0x80, named as Linux's `__panic_unhandled` names them.
const VECTOR_NAMES: [&str; 16] = [
    "64-bit el1t sync",
    "64-bit el1t irq",
    "64-bit el1t fiq",
    "64-bit el1t error",
    "64-bit el1h sync",
    "64-bit el1h irq",
    "64-bit el1h fiq",
    "64-bit el1h error",
    "64-bit el0t sync",
    "64-bit el0t irq",
    "64-bit el0t fiq",
    "64-bit el0t error",
    "32-bit el0t sync",
    "32-bit el0t irq",
    "32-bit el0t fiq",
    "32-bit el0t error",
];

/// Linux's `__panic_unhandled`: the vector, the CPU and the syndrome, then die.
fn panic_unhandled(f: &Frame, vector: &str) -> ! {
    println!(
        "Unhandled {} exception on CPU{}, ESR {:#018x} -- {}",
        vector,
        smp::cpu_id(),
        f.esr,
        esr_class_str(esr_ec(f.esr))
    );
    die("Oops - unhandled exception", f, f.esr)
}

/// An exception through a vector this kernel never expects (Linux's `bad_mode` /
/// `__panic_unhandled`), or (`vector` 16) a return to user mode with a privileged pstate.
///
/// # Safety
/// `frame` must point to the frame `inv_entry` built, or the frame `ret_to_user` was about
/// to return with.
#[no_mangle]
pub unsafe extern "C" fn aarch64_bad_mode(frame: *const Frame, vector: u32) -> ! {
    // SAFETY: the entry code passes its frame.
    let f = unsafe { &*frame };
    let name = VECTOR_NAMES
        .get(vector as usize)
        .copied()
        .unwrap_or("ret_to_user with a privileged pstate");
    panic_unhandled(f, name)
}

/// Whether `pstate` is EL1h.
pub fn is_el1h(pstate: u64) -> bool {
    pstate & PSR_MODE_MASK == PSR_MODE_EL1H
}
