//! Undefined instructions, system calls and the death of the kernel, after Linux's
//! arch/arm/kernel/traps.c (seed 003): `register_undef_hook` / `call_undef_hook` /
//! `do_undefinstr`, `arm_notify_die`, `die` with `__show_regs`, and `bad_mode`.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use extable_runtime::arch::arm::{PtRegs, MODE_MASK, PSR_T_BIT, USR_MODE};
use extable_runtime::ExRegs;

use super::fault::Outcome;
use crate::cell::HookList;
use crate::println;
use crate::report;
use crate::signal::{force_sig, SigInfo, ILL_ILLOPC, SIGILL};

/// CPSR mode value of supervisor mode.
pub const SVC_MODE: u32 = 0x13;

/// An undefined-instruction hook (Linux's `struct undef_hook`): it runs for an instruction
/// with `instr & instr_mask == instr_val` trapped in a context with
/// `cpsr & cpsr_mask == cpsr_val`. Thumb-2 32-bit instructions are matched as
/// `first_halfword << 16 | second_halfword`.
pub struct UndefHook {
    /// Which instruction bits to compare.
    pub instr_mask: u32,
    /// Their expected value.
    pub instr_val: u32,
    /// Which CPSR bits to compare (mode, Thumb state).
    pub cpsr_mask: u32,
    /// Their expected value.
    pub cpsr_val: u32,
    /// The handler: `Handled` when it emulated the instruction (and moved the pc on).
    pub func: fn(&mut PtRegs, u32) -> Outcome,
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
fn call_undef_hook(regs: &mut PtRegs, instr: u32) -> Outcome {
    let cpsr = regs.cpsr();
    match HOOKS.find(|h| instr & h.instr_mask == h.instr_val && cpsr & h.cpsr_mask == h.cpsr_val) {
        Some(h) => (h.func)(regs, instr),
        None => Outcome::Unhandled,
    }
}
/// What the last undefined-instruction trap saw, for the scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastUndef {
    /// The instruction (Thumb-2 32-bit ones composed), 0 when it could not be read.
    pub instr: u32,
    /// The corrected pc: the address of the instruction.
    pub pc: usize,
    /// The CPSR it trapped in.
    pub cpsr: u32,
}

static UNDEF_COUNT: AtomicUsize = AtomicUsize::new(0);
static LAST_INSTR: AtomicU32 = AtomicU32::new(0);
static LAST_PC: AtomicUsize = AtomicUsize::new(0);
static LAST_CPSR: AtomicU32 = AtomicU32::new(0);

/// Undefined-instruction traps since boot.
pub fn undef_count() -> usize {
    UNDEF_COUNT.load(Ordering::Relaxed)
}

/// The last undefined-instruction trap.
pub fn last_undef() -> LastUndef {
    LastUndef {
        instr: LAST_INSTR.load(Ordering::Relaxed),
        pc: LAST_PC.load(Ordering::Relaxed),
        cpsr: LAST_CPSR.load(Ordering::Relaxed),
    }
}

/// Whether a first Thumb halfword starts a 32-bit instruction (`is_wide_instruction`).
pub const fn is_wide_instruction(first: u32) -> bool {
    first >= 0xe800
}

/// Kernel text at `pc`: the instruction that just trapped, in mapped kernel text.
fn kernel_instr(pc: usize, thumb: bool) -> u32 {
    // SAFETY: the pc of a trap taken in SVC mode points into the kernel's own text, which
    // is always mapped and readable; the reads are aligned for the state.
    unsafe {
        if !thumb {
            return core::ptr::read_volatile(pc as *const u32);
        }
        let first = u32::from(core::ptr::read_volatile(pc as *const u16));
        if !is_wide_instruction(first) {
            return first;
        }
        let second = u32::from(core::ptr::read_volatile((pc + 2) as *const u16));
        (first << 16) | second
    }
}

/// A user halfword or word at `addr`, through the uaccess primitives.
fn user_read<const N: usize>(addr: usize) -> Option<u32> {
    let mut buf = [0u8; 4];
    if crate::uaccess::copy_from_user(&mut buf[..N], addr) != 0 {
        return None;
    }
    Some(u32::from_le_bytes(buf))
}

/// User text at `pc`, `None` when it cannot be read.
fn user_instr(pc: usize, thumb: bool) -> Option<u32> {
    if !thumb {
        return user_read::<4>(pc);
    }
    let first = user_read::<2>(pc)?;
    if !is_wide_instruction(first) {
        return Some(first);
    }
    Some((first << 16) | user_read::<2>(pc + 2)?)
}

/// An undefined instruction (Linux's `do_undefinstr`): fetch it, give the hooks a chance,
/// else SIGILL for a user task or "Oops - undefined instruction" for the kernel. Called by
/// `__und_fault` with the pc already corrected to the instruction.
///
/// # Safety
/// `regs` must point to the frame `__und_svc`/`__und_usr` built on the stack.
#[no_mangle]
pub unsafe extern "C" fn do_undefinstr(regs: *mut PtRegs) {
    // SAFETY: the entry code passes its frame, live and exclusively ours until we return.
    let regs = unsafe { &mut *regs };
    let pc = regs.pc();
    let thumb = regs.thumb_mode();
    let instr = if regs.cpsr() & MODE_MASK == SVC_MODE {
        Some(kernel_instr(pc, thumb))
    } else {
        user_instr(pc, thumb)
    };
    UNDEF_COUNT.fetch_add(1, Ordering::Relaxed);
    LAST_INSTR.store(instr.unwrap_or(0), Ordering::Relaxed);
    LAST_PC.store(pc, Ordering::Relaxed);
    LAST_CPSR.store(regs.cpsr(), Ordering::Relaxed);
    if let Some(instr) = instr {
        if call_undef_hook(regs, instr) == Outcome::Handled {
            return;
        }
    }
    if regs.user_mode() {
        println!(
            "user: undefined instruction: pc={:#010x} instr={:#010x}",
            pc,
            instr.unwrap_or(0)
        );
    }
    arm_notify_die(
        "Oops - undefined instruction",
        regs,
        SigInfo::new(SIGILL, ILL_ILLOPC, pc),
        0,
    );
}

/// The CPU's Main ID register.
pub fn read_midr() -> u32 {
    let midr: u32;
    // SAFETY: reads MIDR, allowed in SVC mode, no side effects.
    unsafe {
        core::arch::asm!("mrc p15, 0, {}, c0, c0, 0", out(reg) midr, options(nomem, nostack))
    };
    midr
}

/// Signal a user task, or die for the kernel (Linux's `arm_notify_die`).
pub fn arm_notify_die(what: &str, regs: &mut PtRegs, info: SigInfo, err: u32) {
    if regs.user_mode() {
        force_sig(info);
    }
    die(what, regs, err)
}

const MODE_NAMES: [&str; 32] = [
    "USER_26", "FIQ_26", "IRQ_26", "SVC_26", "UK4_26", "UK5_26", "UK6_26", "UK7_26", "UK8_26",
    "UK9_26", "UK10_26", "UK11_26", "UK12_26", "UK13_26", "UK14_26", "UK15_26", "USER_32",
    "FIQ_32", "IRQ_32", "SVC_32", "UK4_32", "UK5_32", "MON_32", "ABT_32", "UK8_32", "UK9_32",
    "HYP_32", "UND_32", "UK12_32", "UK13_32", "UK14_32", "SYS_32",
];

/// The NZCV flags as Linux prints them: a capital letter for a set flag.
fn flags(cpsr: u32) -> [u8; 4] {
    let mut f = *b"nzcv";
    for (i, c) in f.iter_mut().enumerate() {
        if cpsr & (1 << (31 - i)) != 0 {
            c.make_ascii_uppercase();
        }
    }
    f
}

/// Print the saved registers (Linux's `__show_regs`).
pub fn show_regs(regs: &PtRegs) {
    let r = &regs.uregs;
    let cpsr = regs.cpsr();
    println!("PC is at {:#010x}", r[15]);
    println!("LR is at {:#010x}", r[14]);
    println!(
        "pc : [<{:08x}>]    lr : [<{:08x}>]    psr: {:08x}",
        r[15], r[14], cpsr
    );
    println!("sp : {:08x}  ip : {:08x}  fp : {:08x}", r[13], r[12], r[11]);
    println!("r10: {:08x}  r9 : {:08x}  r8 : {:08x}", r[10], r[9], r[8]);
    println!(
        "r7 : {:08x}  r6 : {:08x}  r5 : {:08x}  r4 : {:08x}",
        r[7], r[6], r[5], r[4]
    );
    println!(
        "r3 : {:08x}  r2 : {:08x}  r1 : {:08x}  r0 : {:08x}",
        r[3], r[2], r[1], r[0]
    );
    let f = flags(cpsr);
    println!(
        "Flags: {}  IRQs o{}  FIQs o{}  Mode {}  ISA {}",
        core::str::from_utf8(&f).unwrap_or("????"),
        if cpsr & 0x80 != 0 { "ff" } else { "n" },
        if cpsr & 0x40 != 0 { "ff" } else { "n" },
        MODE_NAMES[(cpsr & MODE_MASK) as usize],
        if cpsr & PSR_T_BIT != 0 {
            "Thumb"
        } else {
            "ARM"
        },
    );
}

static DIE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The kernel cannot go on (Linux's `die`): "Internal error", the registers, the end of the
/// oops through the shared report (failure status).
pub fn die(what: &str, regs: &PtRegs, err: u32) -> ! {
    let n = DIE_COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    println!("Internal error: {}: {:x} [#{}] ARM", what, err, n);
    show_regs(regs);
    println!("Kernel panic - not syncing: Fatal exception");
    report::die(if what.is_empty() {
        "Unhandled fault"
    } else {
        what
    })
}

const BAD_MODE_HANDLERS: [&str; 9] = [
    "prefetch abort",
    "data abort",
    "address exception",
    "interrupt",
    "undefined instruction",
    "FIQ",
    "reset",
    "SWI from a kernel mode",
    "return to user",
];

fn handler_name(reason: u32) -> &'static str {
    BAD_MODE_HANDLERS
        .get(reason as usize)
        .copied()
        .unwrap_or("unknown")
}

/// An exception in a mode that never takes one (Linux's `bad_mode`).
///
/// # Safety
/// `regs` must point to the frame `inv_entry` built.
#[no_mangle]
pub unsafe extern "C" fn arm_bad_mode(regs: *const PtRegs, reason: u32) -> ! {
    println!("Bad mode in {} handler detected", handler_name(reason));
    // SAFETY: the entry code passes its frame.
    die("Oops - bad mode", unsafe { &*regs }, 0)
}

/// The reset or the unused vector was taken: nothing was saved.
#[no_mangle]
pub extern "C" fn arm_bad_vector(reason: u32) -> ! {
    println!("Bad mode in {} handler detected", handler_name(reason));
    report::die("Oops - bad mode")
}

/// A system call from the user task (`svc #0`, number in r7, arguments in r0-r2, result
/// in r0, as the ARM EABI does).
///
/// # Safety
/// `regs` must point to the frame `vector_swi` built.
#[no_mangle]
pub unsafe extern "C" fn arm_syscall(regs: *mut PtRegs) {
    // SAFETY: the entry code passes its frame.
    let regs = unsafe { &mut *regs };
    debug_assert_eq!(regs.cpsr() & MODE_MASK, USR_MODE);
    let r = regs.uregs;
    let args = [r[0] as usize, r[1] as usize, r[2] as usize];
    let ret = crate::task::syscall(r[7] as usize, args);
    regs.uregs[0] = ret as u32;
}
