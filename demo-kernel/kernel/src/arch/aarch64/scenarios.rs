//! The AArch64-only scenarios: the ESR decode and `fault_info[]` dispatch, kernel fixups
//! seen from the arm64 fault path, the `EX_TYPE_UACCESS_ERR_ZERO` semantics, PAN, the
//! TTBR0/TTBR1 split, the EL0 signals (SIGBUS for an unaligned exclusive, UXN, SIGILL,
//! SIGTRAP), the undef hook emulating a trapped `MRS`, WARN, and the dedicated oops
//! boots; and the load [`crate::scenarios::hold_in_fixup`] holds.

use core::fmt::Write;

use super::fault::{
    self, esr_ec, esr_fsc, esr_to_fault_info, EC_DABT_CUR, EC_DABT_LOW, EC_IABT_LOW, EC_SYS64,
    EC_UNKNOWN, ESR_IL, ESR_WNR,
};
use super::traps::{
    self, is_el1h, pan_enabled, register_undef_hook, unregister_undef_hook, UndefHook,
};
use super::{bug, mmu, sym_addr, PSR_MODE_EL0T, PSR_MODE_MASK, PSR_PAN_BIT};
use crate::arch::{user_op, Arch, Current};
use crate::mm::{Mm, PageTables, PAGE_SIZE};
use crate::report::Detail;
use crate::scenarios::{describe, verdict, Scenario};
use crate::signal::{
    signal_name, SigInfo, BUS_ADRALN, ILL_ILLOPC, SEGV_ACCERR, SEGV_MAPERR, SIGBUS, SIGILL,
    SIGSEGV, SIGTRAP, TRAP_BRKPT,
};
use crate::task::{self, Exit};
use crate::uaccess::{copy_from_kernel_nofault, get_user, put_user, Efault, UserPtr};

/// The AArch64-only operations of the user program (user.S), after the shared [`user_op`]s.
mod user_ops {
    /// `mrs x0, id_aa64isar0_el1`; exit code = x0.
    pub const MRS_ID: usize = 32;
    /// `udf #7`.
    pub const UDF: usize = 33;
    /// `brk #7`.
    pub const BRK: usize = 34;
    /// `ldxr x0, [a]`; exit code = x0.
    pub const LDXR: usize = 35;
}

/// The list [`Arch::scenarios`] returns.
pub static SCENARIOS: &[Scenario] = &[
    Scenario::new("aarch64_dabt_decode", dabt_decode),
    Scenario::new("aarch64_kernel_fixup_decode", kernel_fixup_decode),
    Scenario::new("aarch64_put_user_readonly", put_user_readonly),
    Scenario::new("aarch64_uaccess_err_zero", uaccess_err_zero),
    Scenario::new("aarch64_pan_fixup", pan_fixup),
    Scenario::new("aarch64_ttbr_split", ttbr_split),
    Scenario::new(
        "aarch64_sigbus_unaligned_exclusive",
        sigbus_unaligned_exclusive,
    ),
    Scenario::new("aarch64_iabt_uxn", iabt_uxn),
    Scenario::new("aarch64_pc_alignment", pc_alignment),
    Scenario::new("aarch64_sigill", sigill),
    Scenario::new("aarch64_undef_hook_mrs", undef_hook_mrs),
    Scenario::new("aarch64_sigtrap_brk", sigtrap_brk),
    Scenario::new("aarch64_warn", warn),
    Scenario::dedicated("aarch64_oops_null", oops_null),
    Scenario::dedicated("aarch64_oops_paging", oops_paging),
    Scenario::dedicated("aarch64_oops_pan", oops_pan),
    Scenario::dedicated("aarch64_oops_exec_user", oops_exec_user),
    Scenario::dedicated("aarch64_oops_bug", oops_bug),
    Scenario::dedicated("aarch64_oops_undef", oops_undef),
    Scenario::dedicated("aarch64_oops_bad_vector", oops_bad_vector),
];

// ---------------------------------------------------------------------------------------
// Shared pieces of the scenarios.

extern "C" {
    static a64_user_text_start: u8;
    static u_mrs_insn: u8;
    static u_udf_insn: u8;
    static u_brk_insn: u8;
    static u_ldxr_insn: u8;
}

/// The user address of a label in the user program.
macro_rules! user_va {
    ($s:ident) => {
        Current::user_layout().text + sym_addr!($s) - sym_addr!(a64_user_text_start)
    };
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

/// Describe the last abort of this CPU: ESR, its class, its status through
/// `fault_info[]`, WnR, FAR, pc and the saved PSTATE.
fn describe_abort(d: &mut Detail) -> fault::LastAbort {
    let a = fault::last_abort();
    let _ = write!(
        d,
        "; esr={:#010x} ec={:#04x} fsc={:#04x} ({}){} far={:#x} pc={:#x} pstate={:#x}",
        a.esr,
        esr_ec(a.esr),
        esr_fsc(a.esr),
        esr_to_fault_info(a.esr).name,
        if a.esr & ESR_WNR != 0 { " WnR" } else { "" },
        a.far,
        a.pc,
        a.pstate
    );
    a
}

/// A kernel load that no table entry covers: an `asm!` load, so no Rust access touches
/// the address.
fn kernel_read(va: usize) -> u64 {
    let v: u64;
    // SAFETY: callers either read mapped memory or mean to take the oops path; the load
    // has no other effect.
    unsafe { core::arch::asm!("ldr {}, [{}]", out(reg) v, in(reg) va, options(nostack, readonly)) };
    v
}

/// A plain (privileged) kernel load covered by a table entry: under PAN it faults on a
/// user page, and the table fixes it.
fn privileged_probe(va: usize) -> Result<u64, extable_runtime::Fault> {
    let v: u64;
    // SAFETY: the load may fault; its entry resumes after the block with the fault
    // recorded. It reads nothing Rust owns mutably.
    unsafe {
        extable_runtime::asm!(
            "[ex] ldr {v}, [{a}]",
            a = in(reg) va,
            v = out(reg) v,
            options(nostack),
        )
    }?;
    Ok(v)
}

// ---------------------------------------------------------------------------------------
// Hooks (registered at boot, as Linux's initcalls do).

/// The ID registers the MRS hook emulates, by the `op1:CRn:CRm:op2` bits of the MRS
/// (bits 18:5 of the instruction, with op0 = 3).
fn read_id_register(sysreg: u32) -> Option<u64> {
    let v: u64;
    // SAFETY: reads of ID registers at EL1, no side effects.
    unsafe {
        match sysreg {
            // op0=3 op1=0 CRn=0 CRm=0 op2=0: MIDR_EL1.
            0x0000 => core::arch::asm!("mrs {}, midr_el1", out(reg) v, options(nomem, nostack)),
            // CRm=4 op2=0: ID_AA64PFR0_EL1.
            0x0020 => {
                core::arch::asm!("mrs {}, id_aa64pfr0_el1", out(reg) v, options(nomem, nostack))
            }
            // CRm=6 op2=0: ID_AA64ISAR0_EL1.
            0x0030 => {
                core::arch::asm!("mrs {}, id_aa64isar0_el1", out(reg) v, options(nomem, nostack))
            }
            _ => return None,
        }
    }
    Some(v)
}

/// Emulate an EL0 `MRS Xt, <ID register>` (Linux's `emulate_mrs` for the CPU feature
/// registers): the value goes to Xt and the task resumes after the instruction. An ID
/// register the hook does not know reads as zero, as Linux's unallocated ones do.
fn emulate_mrs(regs: &mut extable_runtime::arch::aarch64::PtRegs, instr: u32) -> bool {
    let rt = (instr & 0x1f) as usize;
    let sysreg = (instr >> 5) & 0x3fff;
    let value = read_id_register(sysreg).unwrap_or(0);
    if rt != 31 {
        regs.regs[rt] = value;
    }
    regs.pc += 4;
    true
}

/// `MRS Xt, S3_0_C0_Cm_op2`: the ID register space, at EL0.
static MRS_HOOK: UndefHook = UndefHook {
    instr_mask: 0xffff_f000,
    instr_val: 0xd538_0000,
    pstate_mask: PSR_MODE_MASK,
    pstate_val: PSR_MODE_EL0T,
    func: emulate_mrs,
};

/// Register the kernel's undef hooks.
pub fn register_hooks() {
    assert!(register_undef_hook(&MRS_HOOK), "undef hook list full");
}

// ---------------------------------------------------------------------------------------
// Aborts.

/// ESR_EL1 and FAR_EL1 read and decoded: a user read outside every VMA is a data abort
/// from EL0 with a translation-fault status, a write to the read-only VMA one with WnR
/// set; both dispatch through `fault_info[]` to SIGSEGV.
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
            Exit::Killed(i) => signal_name(i.signo),
            Exit::Exited(_) => "exited",
        };
        let _ = write!(
            d,
            "{what}: {sig} esr={:#010x} ({}){} far={:#x}; ",
            a.esr,
            esr_to_fault_info(a.esr).name,
            if a.esr & ESR_WNR != 0 { " WnR" } else { "" },
            a.far
        );
    }
    let read_ok = read == Exit::Killed(SigInfo::new(SIGSEGV, SEGV_MAPERR, l.unmapped + 4))
        && esr_ec(r.esr) == EC_DABT_LOW
        && r.esr & ESR_IL != 0
        && fault::fsc_is_translation(esr_fsc(r.esr))
        && r.esr & ESR_WNR == 0
        && r.far == l.unmapped + 4
        && r.pstate & PSR_MODE_MASK == PSR_MODE_EL0T;
    let write_ok = write == Exit::Killed(SigInfo::new(SIGSEGV, SEGV_ACCERR, l.rodata + 12))
        && esr_ec(w.esr) == EC_DABT_LOW
        && w.esr & ESR_WNR != 0
        && w.far == l.rodata + 12;
    verdict(d, read_ok && write_ok, format_args!(""))
}

/// `copy_from_kernel_nofault(NULL)` seen from the arm64 fault path: a data abort from EL1h
/// with PAN set, FAR 0 and a translation-fault status (the reserved TTBR0 table is empty),
/// dispatched through `fault_info[]` to `do_translation_fault` -> `do_page_fault` (no user
/// address space) -> `__do_kernel_fault`, where the table fixes it.
fn kernel_fixup_decode(d: &mut Detail) -> bool {
    let aborts = fault::aborts();
    let mut buf = [0u8; 8];
    // SAFETY: the probe only reads through its exception-table-covered loads.
    let r = unsafe { copy_from_kernel_nofault(&mut buf, core::ptr::null()) };
    let a = describe_abort(d);
    let taken = fault::aborts() - aborts;
    let pass = r == Err(Efault)
        && taken >= 1
        && a.far == 0
        && esr_ec(a.esr) == EC_DABT_CUR
        && fault::fsc_is_translation(esr_fsc(a.esr))
        && is_el1h(a.pstate)
        && a.pstate & PSR_PAN_BIT != 0;
    verdict(
        d,
        pass,
        format_args!("; nofault(NULL) = {:?} after {} abort(s)", r, taken),
    )
}

/// `put_user` (an `STTR`) into a present read-only user page: a level-3 permission fault
/// with WnR from EL1, `do_page_fault` finds the uaccess entry, the VMA forbids the write
/// (access_error), and `__do_kernel_fault` fixes it: -EFAULT, nothing written.
fn put_user_readonly(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let addr = Current::user_layout().rodata + 16;
    let read = task::run(&mut mm, user_op::READ, addr, 0);
    let (r, back) = task::with_mm(&mut mm, || {
        let r = put_user(0x5au8, UserPtr::new(addr));
        (r, get_user(UserPtr::<u8>::new(addr)))
    });
    describe(read, d);
    let _ = write!(d, "; put_user = {:?}, then get_user = {:?}", r, back);
    let a = describe_abort(d);
    let pass = read == Exit::Exited(0)
        && r == Err(Efault)
        && back == Ok(0)
        && esr_ec(a.esr) == EC_DABT_CUR
        && esr_fsc(a.esr) == 0x0f
        && a.esr & ESR_WNR != 0
        && a.far == addr;
    verdict(d, pass, format_args!(""))
}

/// A `get_user`-style `LDTR` whose entry has the runtime's `efault::<9, 10>` handler:
/// Linux's arm64 `_ASM_EXTABLE_UACCESS_ERR_ZERO(1b, 2b, err, val)`. Returns (err, val).
fn get_user_err_zero(addr: usize) -> (u64, u64) {
    let (err, val): (u64, u64);
    // SAFETY: the LDTR may fault; its entry (handler efault: x9 = -EFAULT, x10 = 0) resumes
    // at the end of the block. It reads user memory only (EL0 permissions).
    unsafe {
        core::arch::asm!(
            "mov x9, #0",
            "2: ldtr x10, [{p}]",
            "3:",
            ".pushsection __ex_table, \"aR\"",
            ".balign 4",
            ".long 2b - ., 3b - ., {h} - .",
            ".popsection",
            p = in(reg) addr,
            out("x9") err,
            inout("x10") 0x5a5a_5a5a_5a5a_5a5au64 => val,
            h = sym extable_runtime::handlers::efault::<9, 10>,
            options(nostack, readonly),
        )
    };
    (err, val)
}

/// The AArch64 handler semantics of `EX_TYPE_UACCESS_ERR_ZERO`: a faulting user load
/// leaves -EFAULT in the error register and zero in the value register (which held a
/// pattern); a good one leaves 0 and the value.
fn uaccess_err_zero(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let l = Current::user_layout();
    let good_addr = l.data + 8 * PAGE_SIZE;
    let staged = task::run(&mut mm, user_op::WRITE, good_addr, 0x77);
    let (bad, good) = task::with_mm(&mut mm, || {
        (
            get_user_err_zero(l.unmapped + 8),
            get_user_err_zero(good_addr),
        )
    });
    let _ = write!(
        d,
        "bad: err={} val={:#x}; good: err={} val={:#x}",
        bad.0 as i64, bad.1, good.0 as i64, good.1
    );
    let a = describe_abort(d);
    let pass = staged == Exit::Exited(0x77)
        && bad == (Efault::ERRNO as u64, 0)
        && good == (0, 0x77)
        && a.far == l.unmapped + 8;
    verdict(d, pass, format_args!(""))
}

/// PAN: the kernel runs with PSTATE.PAN set, so a plain (privileged) load of a present,
/// readable user page takes a level-3 permission fault; a table entry covers this one, so
/// it is fixed. The unprivileged `LDTR` of `get_user` reads the same byte.
fn pan_fixup(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let addr = Current::user_layout().data + 5 * PAGE_SIZE;
    let staged = task::run(&mut mm, user_op::WRITE, addr, 0x42);
    let (plain, ldtr, a) = task::with_mm(&mut mm, || {
        let plain = privileged_probe(addr);
        let a = fault::last_abort();
        (plain, get_user(UserPtr::<u8>::new(addr)), a)
    });
    let _ = write!(
        d,
        "PAN {}; plain ldr = {}, ldtr (get_user) = {:?}",
        if pan_enabled() { "on" } else { "off" },
        if plain.is_err() { "Err(fault)" } else { "Ok" },
        ldtr
    );
    let _ = write!(
        d,
        "; esr={:#010x} fsc={:#04x} ({}) far={:#x} pstate.PAN={}",
        a.esr,
        esr_fsc(a.esr),
        esr_to_fault_info(a.esr).name,
        a.far,
        (a.pstate & PSR_PAN_BIT != 0) as u8
    );
    let pass = staged == Exit::Exited(0x42)
        && pan_enabled()
        && plain.is_err()
        && ldtr == Ok(0x42)
        && esr_ec(a.esr) == EC_DABT_CUR
        && esr_fsc(a.esr) == 0x0f
        && a.far == addr
        && a.pstate & PSR_PAN_BIT != 0;
    verdict(d, pass, format_args!(""))
}

/// Kernel mappings live in TTBR1, user mappings in TTBR0: the kernel image is above
/// TASK_SIZE, a user address space's TTBR0 tables have nothing for it, and TTBR1 does; a
/// user pointer into the kernel half is refused by the range check (no fault taken).
fn ttbr_split(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let kaddr = sym_addr!(a64_user_text_start);
    let l = Current::user_layout();
    let before = fault::aborts();
    let (ttbr0, refused) = task::with_mm(&mut mm, || {
        (mmu::current_ttbr0(), get_user(UserPtr::<u8>::new(kaddr)))
    });
    let taken = fault::aborts() - before;
    let in_ttbr0 = mm.space.translate(kaddr).is_some() || mm.space.translate(l.text).is_none();
    let ttbr1 = mmu::walk(mmu::current_ttbr1(), kaddr).desc[0].unwrap_or(0);
    let pass = kaddr >= mmu::KIMAGE_VOFFSET
        && Current::user_limit() == mmu::TASK_SIZE
        && ttbr0 != mmu::reserved_phys()
        && mmu::current_ttbr0() == mmu::reserved_phys()
        && !in_ttbr0
        && ttbr1 & mmu::PTE_VALID != 0
        && ttbr1 & mmu::PTE_USER == 0
        && refused == Err(Efault)
        && taken == 0;
    verdict(
        d,
        pass,
        format_args!(
            "kernel text {:#x} (TTBR1 pgd={:#x}), TASK_SIZE {:#x}, task TTBR0 {:#x}, kernel TTBR0 {:#x} (reserved); get_user(kernel) = {:?} after {} faults",
            kaddr, ttbr1, mmu::TASK_SIZE, ttbr0, mmu::reserved_phys(), refused, taken
        ),
    )
}

// ---------------------------------------------------------------------------------------
// EL0 signals.

/// An exclusive load from an unaligned address faults with the alignment status whatever
/// SCTLR.A says: `fault_info[0x21]` -> `do_alignment_fault` -> SIGBUS/BUS_ADRALN.
fn sigbus_unaligned_exclusive(d: &mut Detail) -> bool {
    let l = Current::user_layout();
    let addr = l.data + 2 * PAGE_SIZE + 1;
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    // Fault the page in first, so that only the alignment can fault.
    let first = task::run(&mut mm, user_op::WRITE, addr, 1);
    let exit = task::run(&mut mm, user_ops::LDXR, addr, 0);
    describe(exit, d);
    let a = describe_abort(d);
    let pass = first == Exit::Exited(1)
        && exit == Exit::Killed(SigInfo::new(SIGBUS, BUS_ADRALN, addr))
        && esr_fsc(a.esr) == 0x21
        && a.pc == user_va!(u_ldxr_insn);
    verdict(d, pass, format_args!(""))
}

/// A jump into a present page mapped UXN (the data VMA has no VM_EXEC): an instruction
/// abort from EL0 with a level-3 permission fault, access_error, SIGSEGV/SEGV_ACCERR.
fn iabt_uxn(d: &mut Detail) -> bool {
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
        && esr_ec(a.esr) == EC_IABT_LOW
        && esr_fsc(a.esr) == 0x0f
        && a.far == target
        && a.pc == target;
    verdict(d, pass, format_args!(""))
}

/// A jump to a misaligned address is a PC alignment fault (EC 0x22): SIGBUS/BUS_ADRALN at
/// the target.
fn pc_alignment(d: &mut Detail) -> bool {
    let target = Current::user_layout().text + 2;
    let Some(exit) = run_once(d, user_op::EXEC, target, 0) else {
        return false;
    };
    verdict(
        d,
        exit == Exit::Killed(SigInfo::new(SIGBUS, BUS_ADRALN, target)),
        format_args!(""),
    )
}

fn describe_undef(d: &mut Detail) -> traps::LastUndef {
    let u = traps::last_undef();
    let _ = write!(
        d,
        "; instr={:#010x} pc={:#x} ec={:#04x}",
        u.instr, u.pc, u.ec
    );
    u
}

/// An undefined instruction with no hook: SIGILL/ILL_ILLOPC at the instruction.
fn sigill(d: &mut Detail) -> bool {
    let pc = user_va!(u_udf_insn);
    let Some(exit) = run_once(d, user_ops::UDF, 0, 0) else {
        return false;
    };
    let u = describe_undef(d);
    let pass = exit == Exit::Killed(SigInfo::new(SIGILL, ILL_ILLOPC, pc))
        && u.instr == 0x0000_0007
        && u.ec == EC_UNKNOWN
        && u.pc == pc;
    verdict(d, pass, format_args!(""))
}

/// An EL0 `MRS` of ID_AA64ISAR0_EL1 traps (EC 0x18, or 0x00 without FEAT_IDST); the hook
/// emulates it with the value the kernel reads, and the task resumes after it. Without the
/// hook the same MRS is a SIGILL.
fn undef_hook_mrs(d: &mut Detail) -> bool {
    let count = traps::undef_count();
    let want = read_id_register(0x0030).unwrap_or(u64::MAX) as usize;
    let Some(with) = run_once(d, user_ops::MRS_ID, 0, 0) else {
        return false;
    };
    let u = describe_undef(d);
    let traps_with = traps::undef_count() - count;
    unregister_undef_hook(&MRS_HOOK);
    let _ = write!(d, "; without the hook: ");
    let without = run_once(d, user_ops::MRS_ID, 0, 0);
    let registered = register_undef_hook(&MRS_HOOK);
    let pc = user_va!(u_mrs_insn);
    let pass = with == Exit::Exited(want)
        && traps_with == 1
        && u.pc == pc
        && u.instr == 0xd538_0600
        && matches!(u.ec, EC_SYS64 | EC_UNKNOWN)
        && without == Some(Exit::Killed(SigInfo::new(SIGILL, ILL_ILLOPC, pc)))
        && registered;
    verdict(
        d,
        pass,
        format_args!("; ID_AA64ISAR0_EL1 = {:#x} at EL1", want),
    )
}

/// `BRK` from EL0: SIGTRAP/TRAP_BRKPT at the instruction.
fn sigtrap_brk(d: &mut Detail) -> bool {
    let pc = user_va!(u_brk_insn);
    let Some(exit) = run_once(d, user_ops::BRK, 0, 0) else {
        return false;
    };
    verdict(
        d,
        exit == Exit::Killed(SigInfo::new(SIGTRAP, TRAP_BRKPT, pc)),
        format_args!(""),
    )
}

/// `WARN_ON(true)`: a `brk #0x800` found in `__bug_table` as a warning, reported, and the
/// kernel resumes after it; `WARN_ON(false)` does not trap.
fn warn(d: &mut Detail) -> bool {
    let before = bug::warnings();
    let quiet = crate::warn_on!(core::hint::black_box(false));
    let after_quiet = bug::warnings();
    let loud = crate::warn_on!(core::hint::black_box(true));
    let after_loud = bug::warnings();
    let entries = bug::bug_table().len();
    verdict(
        d,
        !quiet && loud && after_quiet == before && after_loud == before + 1 && entries >= 2,
        format_args!(
            "WARN_ON(false) warnings +{}, WARN_ON(true) warnings +{}, resumed; __bug_table has {} entries",
            after_quiet - before,
            after_loud - after_quiet,
            entries
        ),
    )
}

// ---------------------------------------------------------------------------------------
// More than one CPU.

crate::scenarios::load_held_in_fixup!("[ex] ldr {v}, [{a}]");

// ---------------------------------------------------------------------------------------
// The oops boots.

/// A kernel NULL dereference outside any fixup: "Unable to handle kernel NULL pointer
/// dereference", the abort decode, die.
fn oops_null(d: &mut Detail) -> bool {
    let v = kernel_read(0);
    verdict(d, false, format_args!("read {:#x} from NULL", v))
}

/// A kernel read of an unmapped address in the TTBR1 half: "paging request", the walk of
/// the kernel table, die.
fn oops_paging(d: &mut Detail) -> bool {
    let va = mmu::KIMAGE_VOFFSET + 0xc000_0000;
    let v = kernel_read(va);
    verdict(d, false, format_args!("read {:#x} from {:#x}", v, va))
}

/// A plain kernel load of a present user page under PAN, outside the uaccess routines and
/// without a table entry: "access to user memory outside uaccess routines", die.
fn oops_pan(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let addr = Current::user_layout().data;
    let staged = task::run(&mut mm, user_op::WRITE, addr, 0x11);
    let v = task::with_mm(&mut mm, || kernel_read(addr));
    describe(staged, d);
    verdict(d, false, format_args!("; read {:#x} from {:#x}", v, addr))
}

/// A kernel jump into the user task's text (mapped PXN): an instruction abort from EL1 with
/// a permission fault, never fixed: "execution of user memory", die.
fn oops_exec_user(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let target = Current::user_layout().text;
    task::with_mm(&mut mm, || {
        // SAFETY: the fetch faults (user pages are privileged-execute-never) and the
        // kernel dies; nothing runs there.
        unsafe { core::arch::asm!("blr {}", in(reg) target, clobber_abi("C")) };
    });
    verdict(
        d,
        false,
        format_args!("executed user text at {:#x}", target),
    )
}

/// `BUG()`: "kernel BUG at file:line!", die.
fn oops_bug(d: &mut Detail) -> bool {
    if core::hint::black_box(true) {
        crate::bug!();
    }
    verdict(d, false, format_args!("BUG() returned"))
}

/// A kernel undefined instruction: "Oops - Undefined instruction", die.
fn oops_undef(d: &mut Detail) -> bool {
    // SAFETY: traps; the kernel dies.
    unsafe { core::arch::asm!("udf #0x42", options(nostack)) };
    verdict(d, false, format_args!("executed an undefined instruction"))
}

/// A synchronous exception while running on SP_EL0 (PSTATE.SP = 0) is taken through the
/// "current EL with SP0" vector, which this kernel never expects: the vector reports itself
/// ("Unhandled 64-bit el1t sync exception"), die.
fn oops_bad_vector(d: &mut Detail) -> bool {
    // SAFETY: SP_EL0 gets the current stack, so the code keeps a valid stack after the
    // switch; the `brk` then traps through the EL1t vector and the kernel dies.
    unsafe {
        core::arch::asm!(
            "mov {t}, sp",
            "msr sp_el0, {t}",
            "msr spsel, #0",
            "brk #0x1",
            "msr spsel, #1",
            t = out(reg) _,
        )
    };
    verdict(d, false, format_args!("returned from the EL1t vector"))
}
