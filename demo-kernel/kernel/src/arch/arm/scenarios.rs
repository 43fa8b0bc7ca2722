//! The ARM-only scenarios: the fault-status decode and dispatch, `do_translation_fault`,
//! prefetch aborts, the Thumb-2 abort and undefined-instruction paths, the undef hooks, and
//! the dedicated oops boots.

use core::fmt::Write;

use extable_runtime::arch::arm::{MODE_MASK, PSR_T_BIT, USR_MODE};

use super::fault::{self, fsr_fs, FSR_INFO, FSR_WRITE, IFSR_INFO};
use super::mmu;
use super::traps::{
    self, read_midr, register_undef_hook, unregister_undef_hook, UndefHook, SVC_MODE,
};
use crate::arch::{user_op, Arch, Current};
use crate::mm::{self, Mm, PageTables, PAGE_SIZE};
use crate::println;
use crate::report::Detail;
use crate::scenarios::{describe, verdict, Scenario};
use crate::signal::{
    code_name, signal_name, SigInfo, BUS_ADRALN, ILL_ILLOPC, SEGV_ACCERR, SEGV_MAPERR, SIGBUS,
    SIGILL, SIGSEGV,
};
use crate::task::{self, Exit};

/// The ARM-only operations of the user program (user.S), after the shared [`user_op`]s.
mod user_ops {
    /// `mrc p15, 0, r0, c0, c0, 0` (MIDR) in A32: UNDEFINED in user mode; exit code = r0.
    pub const MIDR_A32: usize = 32;
    /// The same in T32 (a 32-bit Thumb-2 instruction).
    pub const MIDR_T32: usize = 33;
    /// `udf #7` in A32.
    pub const UDF_A32: usize = 34;
    /// `udf #7` in T16.
    pub const UDF_T16: usize = 35;
    /// `ldrd r2, r3, [a]`; exit code = r2.
    pub const LDRD: usize = 36;
    /// `strb.w b, [a]; ldrb.w r0, [a]` in Thumb-2; exit code = the byte.
    pub const T32_WRITE: usize = 37;
    /// `ldr.w r0, [a]` in Thumb-2; exit code = the word.
    pub const T32_READ: usize = 38;
    /// `udf.w #7` in T32.
    pub const UDF_T32: usize = 39;
}

/// The list [`Arch::scenarios`] returns.
pub static SCENARIOS: &[Scenario] = &[
    Scenario::new("arm_dabt_decode", dabt_decode),
    Scenario::new("arm_translation_fault_copy", translation_fault_copy),
    Scenario::new("arm_unhandled_alignment", unhandled_alignment),
    Scenario::new("arm_t32_demand_fault", t32_demand_fault),
    Scenario::new("arm_t32_segv", t32_segv),
    Scenario::new("arm_t32_kernel_fixup", t32_kernel_fixup),
    Scenario::new("arm_kernel_fixup_decode", kernel_fixup_decode),
    Scenario::new("arm_put_user_readonly", put_user_readonly),
    Scenario::new("arm_pabt_unmapped", pabt_unmapped),
    Scenario::new("arm_pabt_xn", pabt_xn),
    Scenario::new("arm_pabt_t32", pabt_t32),
    Scenario::new("arm_undef_hook_user_a32", undef_hook_user_a32),
    Scenario::new("arm_undef_hook_user_t32", undef_hook_user_t32),
    Scenario::new("arm_undef_hook_cpsr_match", undef_hook_cpsr_match),
    Scenario::new("arm_undef_sigill_a32", undef_sigill_a32),
    Scenario::new("arm_undef_sigill_t16", undef_sigill_t16),
    Scenario::new("arm_undef_sigill_t32", undef_sigill_t32),
    Scenario::new("arm_undef_hook_kernel", undef_hook_kernel),
    Scenario::new("arm_undef_hook_kernel_t16", undef_hook_kernel_t16),
    Scenario::dedicated("arm_oops_null", oops_null),
    Scenario::dedicated("arm_oops_paging", oops_paging),
    Scenario::dedicated("arm_oops_undef", oops_undef),
    Scenario::dedicated("arm_oops_pabt", oops_pabt),
];

// ---------------------------------------------------------------------------------------
// Helpers.

extern "C" {
    static arm_user_text_start: u8;
    static u_midr_a32_insn: u8;
    static u_udf_a32_insn: u8;
    static u_ldrd_insn: u8;
    static u_t32_midr_insn: u8;
    static u_t16_udf_insn: u8;
    static u_t32_udf_insn: u8;
    static u_t32_write_insn: u8;
    static u_t32_read_insn: u8;
}

/// The user address of a label in the user program (Thumb bit dropped).
macro_rules! user_va {
    ($s:ident) => {{
        let sym = core::ptr::addr_of!($s) as usize;
        let start = core::ptr::addr_of!(arm_user_text_start) as usize;
        Current::user_layout().text + (sym & !1) - start
    }};
}

fn new_mm(d: &mut Detail) -> Option<Mm> {
    let mm = task::new_mm();
    if mm.is_none() {
        let _ = write!(d, "cannot build the user address space");
    }
    mm
}

/// Run one user operation in a fresh address space.
fn run_once(d: &mut Detail, op: usize, a: usize, b: usize) -> Option<Exit> {
    let mut mm = new_mm(d)?;
    let exit = task::run(&mut mm, op, a, b);
    describe(exit, d);
    Some(exit)
}

/// Describe the last abort: status, its decode through the table, address, pc, state.
fn describe_abort(d: &mut Detail) -> fault::LastAbort {
    let a = fault::last_abort();
    let table = if a.prefetch { &IFSR_INFO } else { &FSR_INFO };
    let _ = write!(
        d,
        "; {}={:#05x} fs={:#x} ({}){} {}={:#010x} pc={:#010x} {}",
        if a.prefetch { "ifsr" } else { "dfsr" },
        a.fsr,
        fsr_fs(a.fsr),
        table[fsr_fs(a.fsr)].name,
        if a.fsr & FSR_WRITE != 0 { " write" } else { "" },
        if a.prefetch { "ifar" } else { "dfar" },
        a.far,
        a.pc,
        if a.cpsr & PSR_T_BIT != 0 {
            "T32"
        } else {
            "A32"
        },
    );
    a
}

// ---------------------------------------------------------------------------------------
// The undef hooks (registered at boot, as Linux's initcalls do).

/// Emulate a user-mode `mrc p15, 0, Rt, c0, c0, 0` (MIDR read), as Linux emulates
/// registers user space may not read; the task resumes after the instruction.
fn emulate_midr(regs: &mut extable_runtime::arch::arm::PtRegs, instr: u32) -> fault::Outcome {
    let rt = ((instr >> 12) & 0xf) as usize;
    if rt == 15 {
        return fault::Outcome::Unhandled;
    }
    regs.uregs[rt] = read_midr();
    regs.uregs[15] = regs.uregs[15].wrapping_add(4);
    fault::Outcome::Handled
}

/// `MRC p15, 0, Rt, c0, c0, 0` with condition AL: the same bits in A32 and (composed) T32.
const MRC_MIDR: u32 = 0xee10_0f10;
/// The MRC with Rt masked out.
const MRC_MIDR_MASK: u32 = 0xffff_0fff;

/// The A32 MIDR hook: user mode, ARM state.
static MIDR_A32_HOOK: UndefHook = UndefHook {
    instr_mask: MRC_MIDR_MASK,
    instr_val: MRC_MIDR,
    cpsr_mask: MODE_MASK | PSR_T_BIT,
    cpsr_val: USR_MODE,
    func: emulate_midr,
};

/// The T32 MIDR hook: user mode, Thumb state.
static MIDR_T32_HOOK: UndefHook = UndefHook {
    instr_mask: MRC_MIDR_MASK,
    instr_val: MRC_MIDR,
    cpsr_mask: MODE_MASK | PSR_T_BIT,
    cpsr_val: USR_MODE | PSR_T_BIT,
    func: emulate_midr,
};

/// The kernel's WARN instruction in A32 (`udf #0x13`), like Linux's BUG/WARN traps.
const WARN_INSN: u32 = 0xe7f0_01f3;
/// The same in T16 (`udf #0x13`), for Thumb-2 kernel code (Linux's Thumb BUG is 0xde02).
const WARN_INSN_T16: u32 = 0xde13;

/// Report a WARN and resume after it (4 bytes in A32, 2 for the 16-bit Thumb form).
fn warn_hook(regs: &mut extable_runtime::arch::arm::PtRegs, instr: u32) -> fault::Outcome {
    println!("------------[ cut here ]------------");
    println!("WARNING: CPU: 0 at {:#010x}", regs.uregs[15]);
    let len = if regs.thumb_mode() && instr < 0x1_0000 {
        2
    } else {
        4
    };
    regs.uregs[15] = regs.uregs[15].wrapping_add(len);
    fault::Outcome::Handled
}

/// The WARN hook: SVC mode, ARM state.
static WARN_HOOK: UndefHook = UndefHook {
    instr_mask: 0xffff_ffff,
    instr_val: WARN_INSN,
    cpsr_mask: MODE_MASK | PSR_T_BIT,
    cpsr_val: SVC_MODE,
    func: warn_hook,
};

/// The Thumb WARN hook: SVC mode, Thumb state.
static WARN_T16_HOOK: UndefHook = UndefHook {
    instr_mask: 0xffff_ffff,
    instr_val: WARN_INSN_T16,
    cpsr_mask: MODE_MASK | PSR_T_BIT,
    cpsr_val: SVC_MODE | PSR_T_BIT,
    func: warn_hook,
};

/// Register the kernel's undef hooks.
pub fn register_hooks() {
    for hook in [&MIDR_A32_HOOK, &MIDR_T32_HOOK, &WARN_HOOK, &WARN_T16_HOOK] {
        assert!(register_undef_hook(hook), "undef hook list full");
    }
}

// ---------------------------------------------------------------------------------------
// Data aborts.

/// DFSR and DFAR are read and decoded: a user read outside every VMA is a section
/// translation fault (fs 5, do_translation_fault -> do_page_fault), a write to the
/// read-only VMA a fault with WnR set; both dispatch through fsr_info to SIGSEGV.
fn dabt_decode(d: &mut Detail) -> bool {
    let l = Current::user_layout();
    let probe = |op, addr, value| -> Option<(Exit, fault::LastAbort)> {
        let mut mm = task::new_mm()?;
        let exit = task::run(&mut mm, op, addr, value);
        Some((exit, fault::last_abort()))
    };
    let (Some((read, r)), Some((write, w))) = (
        probe(user_op::READ, l.unmapped + 4, 0),
        probe(user_op::WRITE, l.rodata + 12, 7),
    ) else {
        let _ = write!(d, "cannot build the user address space");
        return false;
    };
    for (what, exit, a) in [("read", read, r), ("write", write, w)] {
        let sig = match exit {
            Exit::Killed(i) => (i.signo, i.code),
            Exit::Exited(_) => (0, 0),
        };
        let _ = write!(
            d,
            "{what}: {} ({}) signal {} code {}, dfsr={:#05x} ({}) dfar={:#010x}; ",
            signal_name(sig.0),
            code_name(sig.0, sig.1),
            sig.0,
            sig.1,
            a.fsr,
            FSR_INFO[fsr_fs(a.fsr)].name,
            a.far
        );
    }
    let read_ok = read == Exit::Killed(SigInfo::new(SIGSEGV, SEGV_MAPERR, l.unmapped + 4))
        && !r.prefetch
        && fsr_fs(r.fsr) == 5
        && r.fsr & FSR_WRITE == 0
        && r.far == l.unmapped + 4
        && r.cpsr & MODE_MASK == USR_MODE;
    let write_ok = write == Exit::Killed(SigInfo::new(SIGSEGV, SEGV_ACCERR, l.rodata + 12))
        && w.fsr & FSR_WRITE != 0
        && w.far == l.rodata + 12
        && matches!(fsr_fs(w.fsr), 5 | 7 | 0xf);
    verdict(d, read_ok && write_ok, format_args!(""))
}

/// The vmalloc counterpart: a kernel page mapped in the reference table (init_mm) after
/// the process table was made is missing there; the kernel's first access takes a section
/// translation fault, do_translation_fault copies the first-level entry and the access is
/// retried; a second access does not fault.
fn translation_fault_copy(d: &mut Detail) -> bool {
    let Some(mm) = new_mm(d) else {
        return false;
    };
    let Some(pa) = mm::alloc_frame() else {
        let _ = write!(d, "out of frames");
        return false;
    };
    const MAGIC: u32 = 0x7e57_ab1e;
    // SAFETY: a fresh frame, identity-mapped kernel RAM, owned by this scenario.
    unsafe { ((Current::phys_to_virt(pa) + 0x40) as *mut u32).write_volatile(MAGIC) };
    let va = mmu::VMALLOC_START + 0x0010_0000 + 0x3000;
    if mmu::map_kernel_page(va, pa).is_err() {
        let _ = write!(d, "cannot map the vmalloc page");
        return false;
    }
    let in_process_before = !mm.space.pgd().l1_none(va);
    mm.space.activate();
    let (copies0, aborts0) = (fault::l1_copies(), fault::aborts());
    let first = kernel_read(va + 0x40);
    let (copies1, aborts1) = (fault::l1_copies(), fault::aborts());
    let second = kernel_read(va + 0x40);
    let (copies2, aborts2) = (fault::l1_copies(), fault::aborts());
    Current::activate_kernel_space();
    let a = fault::last_abort();
    let pass = !in_process_before
        && first == MAGIC
        && second == MAGIC
        && copies1 == copies0 + 1
        && aborts1 == aborts0 + 1
        && copies2 == copies1
        && aborts2 == aborts1
        && fsr_fs(a.fsr) == 5
        && a.far == va + 0x40
        && a.cpsr & MODE_MASK == SVC_MODE;
    verdict(
        d,
        pass,
        format_args!(
            "va={:#x} read {:#x} then {:#x}; aborts +{} then +{}; L1 copies +{} then +{}; dfsr={:#05x} ({})",
            va,
            first,
            second,
            aborts1 - aborts0,
            aborts2 - aborts1,
            copies1 - copies0,
            copies2 - copies1,
            a.fsr,
            FSR_INFO[fsr_fs(a.fsr)].name
        ),
    )
}

/// A kernel read that may take a fault which the fault path serves and retries (not one
/// the exception table fixes): an `asm!` load, so no Rust access touches the address.
fn kernel_read(va: usize) -> u32 {
    let v: u32;
    // SAFETY: the caller maps `va` (possibly only in the reference table, which the
    // translation fault copies in); the load has no other effect.
    unsafe { core::arch::asm!("ldr {}, [{}]", out(reg) v, in(reg) va, options(nostack, readonly)) };
    v
}

/// A status fsr_info does not handle: an LDRD from a non-word-aligned user address is an
/// alignment fault (fs 1); "Unhandled fault: alignment exception" and SIGBUS/BUS_ADRALN.
fn unhandled_alignment(d: &mut Detail) -> bool {
    let l = Current::user_layout();
    let addr = l.data + 2 * PAGE_SIZE + 1;
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    // Fault the page in first, so that only the alignment can fault.
    let first = task::run(&mut mm, user_op::WRITE, addr, 1);
    let exit = task::run(&mut mm, user_ops::LDRD, addr, 0);
    describe(exit, d);
    let a = describe_abort(d);
    let pass = first == Exit::Exited(1)
        && exit == Exit::Killed(SigInfo::new(SIGBUS, BUS_ADRALN, addr))
        && fsr_fs(a.fsr) == 1
        && a.pc == user_va!(u_ldrd_insn);
    verdict(d, pass, format_args!(""))
}

/// Demand paging on a Thumb-2 store: the abort is taken on a 32-bit T32 instruction (pc
/// corrected by 8, T set in the saved CPSR), served as a minor fault, and the store retried.
fn t32_demand_fault(d: &mut Detail) -> bool {
    let l = Current::user_layout();
    let addr = l.data + 3 * PAGE_SIZE + 0x21;
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let before = mm.minor_faults;
    let exit = task::run(&mut mm, user_ops::T32_WRITE, addr, 0xa5);
    describe(exit, d);
    let a = describe_abort(d);
    let pass = exit == Exit::Exited(0xa5)
        && mm.minor_faults == before + 1
        && a.cpsr & PSR_T_BIT != 0
        && a.pc == user_va!(u_t32_write_insn)
        && a.far == addr
        && a.fsr & FSR_WRITE != 0;
    verdict(
        d,
        pass,
        format_args!("; minor faults +{}", mm.minor_faults - before),
    )
}

/// A Thumb-2 load outside every VMA: SIGSEGV/SEGV_MAPERR, the saved pc at the T32 load.
fn t32_segv(d: &mut Detail) -> bool {
    let l = Current::user_layout();
    let Some(exit) = run_once(d, user_ops::T32_READ, l.unmapped + 8, 0) else {
        return false;
    };
    let a = describe_abort(d);
    let pass = exit == Exit::Killed(SigInfo::new(SIGSEGV, SEGV_MAPERR, l.unmapped + 8))
        && a.cpsr & PSR_T_BIT != 0
        && a.pc == user_va!(u_t32_read_insn);
    verdict(d, pass, format_args!(""))
}

/// `copy_from_kernel_nofault(NULL)` seen from the ARM fault path: an SVC-mode A32 data
/// abort with DFAR 0 and a translation-fault status, dispatched through fsr_info to
/// `do_translation_fault` -> `do_page_fault` (no user context) -> `__do_kernel_fault`,
/// where the table fixes it: the call returns an error and the kernel goes on.
fn kernel_fixup_decode(d: &mut Detail) -> bool {
    let aborts = fault::aborts();
    let mut buf = [0u8; 8];
    // SAFETY: the probe only reads through its exception-table-covered loads.
    let r = unsafe { crate::uaccess::copy_from_kernel_nofault(&mut buf, core::ptr::null()) };
    let a = describe_abort(d);
    let taken = fault::aborts() - aborts;
    let pass = r.is_err()
        && taken >= 1
        && a.far == 0
        && !a.prefetch
        && matches!(fsr_fs(a.fsr), 5 | 7)
        && a.cpsr & MODE_MASK == SVC_MODE
        && a.cpsr & PSR_T_BIT == 0;
    verdict(
        d,
        pass,
        format_args!("; nofault(NULL) = {:?} after {} abort(s)", r, taken),
    )
}

/// `put_user` into a present read-only user page: the kernel's store takes a page
/// permission fault (a read-only user page is read-only for the kernel too, AP = 111, as
/// Linux's L_PTE_RDONLY on v7), `do_page_fault` sees a write the VMA forbids
/// (access_error), and as the kernel is in a uaccess routine the table fixes it: -EFAULT,
/// nothing written.
fn put_user_readonly(d: &mut Detail) -> bool {
    use crate::uaccess::{get_user, put_user, Efault, UserPtr};
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let addr = Current::user_layout().rodata + 16;
    // The user's read maps the page (read-only, zero-filled).
    let read = task::run(&mut mm, user_op::READ, addr, 0);
    let (r, a, back) = task::with_mm(&mut mm, || {
        let r = put_user(0x5au8, UserPtr::new(addr));
        let a = fault::last_abort();
        (r, a, get_user(UserPtr::<u8>::new(addr)))
    });
    describe(read, d);
    let _ = write!(d, "; put_user = {:?}, then get_user = {:?}", r, back);
    let _ = write!(
        d,
        "; dfsr={:#05x} ({}) dfar={:#010x}",
        a.fsr,
        FSR_INFO[fsr_fs(a.fsr)].name,
        a.far
    );
    let pass = read == Exit::Exited(0)
        && r == Err(Efault)
        && back == Ok(0)
        && fsr_fs(a.fsr) == 0xf
        && a.fsr & FSR_WRITE != 0
        && a.far == addr
        && a.cpsr & MODE_MASK == SVC_MODE;
    verdict(d, pass, format_args!(""))
}

/// A word the Thumb-2 probe reads where nothing can fault.
static T32_WORD: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0x5eed_7332);

/// A kernel load in Thumb-2 (`ldr.w`), covered by an exception-table entry through the
/// `extable_runtime::asm!` wrapper: returns the block's result and the loaded word.
#[instruction_set(arm::t32)]
#[inline(never)]
fn t32_probe(addr: usize) -> (Result<(), extable_runtime::Fault>, u32) {
    let v: u32;
    // SAFETY: the load may fault; its table entry resumes after the block with the fault
    // recorded. It reads nothing Rust owns mutably.
    let r = unsafe {
        extable_runtime::asm!(
            "[ex] ldr.w {v}, [{a}]",
            a = in(reg) addr,
            v = out(reg) v,
            options(nostack),
        )
    };
    (r, v)
}

/// A kernel-mode data abort on a Thumb-2 instruction, fixed through the table: the abort
/// is taken in Thumb state (pc corrected by 8, T in the saved CPSR), `__do_kernel_fault`
/// finds the entry, the fixup (a Thumb address) resumes with T set and the IT bits clear;
/// the function returns the fault, and a good address still reads.
fn t32_kernel_fixup(d: &mut Detail) -> bool {
    let aborts = fault::aborts();
    let (bad, _) = t32_probe(0x880);
    let a = describe_abort(d);
    let taken = fault::aborts() - aborts;
    let good_addr = &T32_WORD as *const _ as usize;
    let (good, v) = t32_probe(good_addr);
    let f = t32_probe as fn(usize) -> _ as usize;
    let pass = bad.as_ref().err().and_then(|e| e.address()) == Some(0x880)
        && taken == 1
        && a.far == 0x880
        && a.cpsr & PSR_T_BIT != 0
        && a.cpsr & MODE_MASK == SVC_MODE
        && f & 1 == 1
        && (f & !1..(f & !1) + 64).contains(&a.pc)
        && good.is_ok()
        && v == 0x5eed_7332;
    verdict(
        d,
        pass,
        format_args!(
            "; probe(0x880) = {}, probe(ok) = {:#x}; aborts +{}",
            if bad.is_err() { "Err(fault)" } else { "Ok" },
            v,
            taken
        ),
    )
}

// ---------------------------------------------------------------------------------------
// Prefetch aborts.

/// A user jump to an address outside every VMA: a prefetch abort (IFSR translation fault,
/// IFAR = the target) and SIGSEGV/SEGV_MAPERR.
fn pabt_unmapped(d: &mut Detail) -> bool {
    let l = Current::user_layout();
    let target = l.unmapped + 0x100;
    let Some(exit) = run_once(d, user_op::EXEC, target, 0) else {
        return false;
    };
    let a = describe_abort(d);
    let pass = exit == Exit::Killed(SigInfo::new(SIGSEGV, SEGV_MAPERR, target))
        && a.prefetch
        && a.far == target
        && a.pc == target
        && matches!(fsr_fs(a.fsr), 5 | 7);
    verdict(d, pass, format_args!(""))
}

/// A user jump into a present, execute-never page (the data VMA has no VM_EXEC): a
/// prefetch permission fault, access_error on VM_EXEC, SIGSEGV/SEGV_ACCERR.
fn pabt_xn(d: &mut Detail) -> bool {
    let l = Current::user_layout();
    let target = l.data + 4 * PAGE_SIZE;
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let touched = task::run(&mut mm, user_op::WRITE, target, 0);
    let exit = task::run(&mut mm, user_op::EXEC, target, 0);
    describe(exit, d);
    let a = describe_abort(d);
    let pass = touched == Exit::Exited(0)
        && exit == Exit::Killed(SigInfo::new(SIGSEGV, SEGV_ACCERR, target))
        && a.prefetch
        && a.far == target
        && fsr_fs(a.fsr) == 0xf;
    verdict(d, pass, format_args!(""))
}

/// A user jump in Thumb state (odd target) outside every VMA: the prefetch abort is taken
/// with T set in the saved CPSR, the pc corrected by 4 to the target, SIGSEGV/SEGV_MAPERR.
fn pabt_t32(d: &mut Detail) -> bool {
    let l = Current::user_layout();
    let target = l.unmapped + 0x200;
    let Some(exit) = run_once(d, user_op::EXEC, target | 1, 0) else {
        return false;
    };
    let a = describe_abort(d);
    let pass = exit == Exit::Killed(SigInfo::new(SIGSEGV, SEGV_MAPERR, target))
        && a.prefetch
        && a.far == target
        && a.pc == target
        && a.cpsr & PSR_T_BIT != 0;
    verdict(d, pass, format_args!(""))
}

// ---------------------------------------------------------------------------------------
// Undefined instructions.

fn describe_undef(d: &mut Detail) -> traps::LastUndef {
    let u = traps::last_undef();
    let _ = write!(
        d,
        "; instr={:#010x} pc={:#010x} {}",
        u.instr,
        u.pc,
        if u.cpsr & PSR_T_BIT != 0 {
            "T32"
        } else {
            "A32"
        }
    );
    u
}

/// A user A32 MRC of MIDR traps; the hook (instr mask/value, CPSR mode USR, T clear)
/// emulates it and the task resumes after it with the value in r0.
fn undef_hook_user_a32(d: &mut Detail) -> bool {
    let count = traps::undef_count();
    let Some(exit) = run_once(d, user_ops::MIDR_A32, 0, 0) else {
        return false;
    };
    let u = describe_undef(d);
    let pass = exit == Exit::Exited(read_midr() as usize)
        && traps::undef_count() == count + 1
        && u.instr == MRC_MIDR
        && u.pc == user_va!(u_midr_a32_insn)
        && u.cpsr & PSR_T_BIT == 0;
    verdict(d, pass, format_args!(""))
}

/// The same MRC as a 32-bit Thumb-2 instruction: composed from two halfwords, pc corrected
/// by 2 from the second halfword, matched by the T32 hook; the task resumes after it.
fn undef_hook_user_t32(d: &mut Detail) -> bool {
    let count = traps::undef_count();
    let Some(exit) = run_once(d, user_ops::MIDR_T32, 0, 0) else {
        return false;
    };
    let u = describe_undef(d);
    let pass = exit == Exit::Exited(read_midr() as usize)
        && traps::undef_count() == count + 1
        && u.instr == MRC_MIDR
        && u.pc == user_va!(u_t32_midr_insn)
        && u.cpsr & PSR_T_BIT != 0;
    verdict(d, pass, format_args!(""))
}

/// Hooks match on the CPSR too: with only the A32 hook registered, the T32 MRC is not
/// emulated (SIGILL); registering the T32 hook makes it work.
fn undef_hook_cpsr_match(d: &mut Detail) -> bool {
    unregister_undef_hook(&MIDR_T32_HOOK);
    let without = run_once(d, user_ops::MIDR_T32, 0, 0);
    let _ = write!(d, " without the T32 hook, ");
    let registered = register_undef_hook(&MIDR_T32_HOOK);
    let with = run_once(d, user_ops::MIDR_T32, 0, 0);
    let _ = write!(d, " with it");
    let pc = user_va!(u_t32_midr_insn);
    let pass = registered
        && without == Some(Exit::Killed(SigInfo::new(SIGILL, ILL_ILLOPC, pc)))
        && with == Some(Exit::Exited(read_midr() as usize));
    verdict(d, pass, format_args!(""))
}

/// No hook for a user A32 UDF: SIGILL/ILL_ILLOPC at the instruction.
fn undef_sigill_a32(d: &mut Detail) -> bool {
    undef_sigill(d, user_ops::UDF_A32, user_va!(u_udf_a32_insn), 0xe7f0_00f7)
}

/// No hook for a user 16-bit Thumb UDF: SIGILL at the instruction (pc corrected by 2).
fn undef_sigill_t16(d: &mut Detail) -> bool {
    undef_sigill(d, user_ops::UDF_T16, user_va!(u_t16_udf_insn), 0xde07)
}

/// No hook for a user 32-bit Thumb-2 UDF.W: SIGILL at its first halfword.
fn undef_sigill_t32(d: &mut Detail) -> bool {
    undef_sigill(d, user_ops::UDF_T32, user_va!(u_t32_udf_insn), 0xf7f0_a007)
}

/// Run user operation `op`, whose undefined instruction at `pc` has no hook: the task must
/// be killed with SIGILL/ILL_ILLOPC at `pc`, and do_undefinstr must have read `instr`.
fn undef_sigill(d: &mut Detail, op: usize, pc: usize, instr: u32) -> bool {
    let Some(exit) = run_once(d, op, 0, 0) else {
        return false;
    };
    let u = describe_undef(d);
    let pass = exit == Exit::Killed(SigInfo::new(SIGILL, ILL_ILLOPC, pc)) && u.instr == instr;
    verdict(d, pass, format_args!(""))
}

/// A kernel A32 WARN instruction: the SVC-mode hook reports it and execution resumes at
/// the next instruction.
fn undef_hook_kernel(d: &mut Detail) -> bool {
    let count = traps::undef_count();
    let after: u32;
    // SAFETY: the WARN hook is registered at boot; it moves the pc past the UDF, and the
    // trap saves and restores every register.
    unsafe {
        core::arch::asm!(
            ".inst 0xe7f001f3",
            "mov {}, #42",
            out(reg) after,
            options(nostack),
        )
    };
    let u = describe_undef(d);
    let pass = after == 42
        && traps::undef_count() == count + 1
        && u.instr == WARN_INSN
        && u.cpsr & MODE_MASK == SVC_MODE;
    verdict(d, pass, format_args!("; resumed after it with r={}", after))
}

/// Thumb kernel code hitting the T16 WARN: `__und_svc` in Thumb state corrects the pc by
/// 2, the Thumb hook matches (T set in the CPSR mask/value) and resumes 2 bytes on.
#[instruction_set(arm::t32)]
#[inline(never)]
fn t16_warn() -> u32 {
    let after: u32;
    // SAFETY: the Thumb WARN hook is registered at boot; it moves the pc past the UDF, and
    // the trap saves and restores every register.
    unsafe {
        core::arch::asm!(
            ".inst.n 0xde13",
            "movs {}, #43",
            out(reg) after,
            options(nostack),
        )
    };
    after
}

fn undef_hook_kernel_t16(d: &mut Detail) -> bool {
    let count = traps::undef_count();
    let after = t16_warn();
    let u = describe_undef(d);
    let f = t16_warn as fn() -> u32 as usize;
    let pass = after == 43
        && traps::undef_count() == count + 1
        && u.instr == WARN_INSN_T16
        && u.cpsr & MODE_MASK == SVC_MODE
        && u.cpsr & PSR_T_BIT != 0
        && (f & !1..(f & !1) + 32).contains(&u.pc);
    verdict(d, pass, format_args!("; resumed after it with r={}", after))
}

// ---------------------------------------------------------------------------------------
// The oops boots.

/// A kernel NULL dereference outside any fixup: "Unable to handle kernel NULL pointer
/// dereference at virtual address 00000000", the walk, die.
fn oops_null(d: &mut Detail) -> bool {
    let v = kernel_read(0);
    verdict(d, false, format_args!("read {:#x} from NULL", v))
}

/// A kernel read of an address the reference table lacks too: do_translation_fault's bad
/// area, "paging request", die.
fn oops_paging(d: &mut Detail) -> bool {
    let va = mmu::VMALLOC_END - 0x0010_0000 + 0x123;
    let v = kernel_read(va);
    verdict(d, false, format_args!("read {:#x} from {:#x}", v, va))
}

/// A kernel undefined instruction without a hook: "Oops - undefined instruction", die.
fn oops_undef(d: &mut Detail) -> bool {
    // SAFETY: traps; there is no hook for this UDF, so the kernel dies.
    unsafe { core::arch::asm!(".inst 0xe7f001f4", options(nostack)) };
    verdict(d, false, format_args!("executed an undefined instruction"))
}

/// A kernel jump into an execute-never RAM section: a prefetch abort in SVC mode
/// (`__pabt_svc`, IFSR section permission fault, IFAR = the target), no fixup covers the
/// target, so "Unable to handle kernel paging request", the walk, die.
fn oops_pabt(d: &mut Detail) -> bool {
    let target = mmu::RAM_START + mmu::RAM_SIZE - PAGE_SIZE;
    // SAFETY: the jump faults at its target (RAM outside the kernel text is mapped
    // execute-never) and the kernel dies; nothing runs there.
    unsafe { core::arch::asm!("blx {}", in(reg) target, options(nostack)) };
    verdict(d, false, format_args!("executed at {:#x}", target))
}

crate::scenarios::load_held_in_fixup!("[ex] ldr {v}, [{a}]");
