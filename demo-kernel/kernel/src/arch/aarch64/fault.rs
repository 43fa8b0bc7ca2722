//! Memory aborts, after Linux's arch/arm64/mm/fault.c: the ESR_EL1 decode, `do_mem_abort`
//! dispatching through `fault_info[]` by the fault status code, `do_translation_fault`,
//! `do_page_fault` (served through the shared VMA code), `do_alignment_fault`,
//! `__do_kernel_fault` (the exception table, or `die_kernel_fault` with the "Mem abort
//! info" / "Data abort info" decode and `show_pte`).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use extable_runtime::{fixup_exception, FaultKind, Trap};

use super::mmu::{self, PAGE_SIZE, TASK_SIZE};
use super::smp;
use super::traps::{arm64_force_sig_fault, die};
use super::Frame;
use crate::mm::{self, Access};
use crate::percpu::MAX_CPUS;
use crate::println;
use crate::signal::{
    SigInfo, BUS_ADRALN, BUS_OBJERR, SEGV_ACCERR, SEGV_MAPERR, SIGBUS, SIGKILL, SIGSEGV, SI_KERNEL,
};

// ---------------------------------------------------------------------------------------
// ESR_EL1.

/// Exception class: unknown reason (an undefined instruction).
pub const EC_UNKNOWN: u32 = 0x00;
/// Exception class: SVC from AArch64.
pub const EC_SVC64: u32 = 0x15;
/// Exception class: trapped MSR/MRS/system instruction from AArch64.
pub const EC_SYS64: u32 = 0x18;
/// Exception class: instruction abort from a lower EL.
pub const EC_IABT_LOW: u32 = 0x20;
/// Exception class: instruction abort from the current EL.
pub const EC_IABT_CUR: u32 = 0x21;
/// Exception class: PC alignment fault.
pub const EC_PC_ALIGN: u32 = 0x22;
/// Exception class: data abort from a lower EL.
pub const EC_DABT_LOW: u32 = 0x24;
/// Exception class: data abort from the current EL.
pub const EC_DABT_CUR: u32 = 0x25;
/// Exception class: SP alignment fault.
pub const EC_SP_ALIGN: u32 = 0x26;
/// Exception class: BRK from AArch64.
pub const EC_BRK64: u32 = 0x3c;

/// ESR: the instruction was 32 bits (IL).
pub const ESR_IL: u64 = 1 << 25;
/// Abort ISS: instruction syndrome valid.
pub const ESR_ISV: u64 = 1 << 24;
/// Abort ISS: synchronous external abort (EA).
pub const ESR_EA: u64 = 1 << 9;
/// Abort ISS: from a cache maintenance operation (CM).
pub const ESR_CM: u64 = 1 << 8;
/// Abort ISS: stage-1 translation table walk (S1PTW).
pub const ESR_S1PTW: u64 = 1 << 7;
/// Abort ISS: write not read (WnR).
pub const ESR_WNR: u64 = 1 << 6;
/// Abort ISS: FAR not valid (FnV).
pub const ESR_FNV: u64 = 1 << 10;
/// Abort ISS: the fault status code (DFSC/IFSC).
pub const ESR_FSC: u64 = 0x3f;

/// The exception class of `esr`.
pub const fn esr_ec(esr: u64) -> u32 {
    ((esr >> 26) & 0x3f) as u32
}

/// The instruction-specific syndrome of `esr`.
pub const fn esr_iss(esr: u64) -> u64 {
    esr & 0x01ff_ffff
}

/// The fault status code of an abort.
pub const fn esr_fsc(esr: u64) -> usize {
    (esr & ESR_FSC) as usize
}

/// A translation fault at any level (FSC 0b0001xx, or level -1).
pub const fn fsc_is_translation(fsc: usize) -> bool {
    fsc & !3 == 0x04 || fsc == 0x2b
}

/// A permission fault at any level (FSC 0b0011xx).
pub const fn fsc_is_permission(fsc: usize) -> bool {
    fsc & !3 == 0x0c
}

/// Linux's `esr_class_str`: the name of an exception class.
pub fn esr_class_str(ec: u32) -> &'static str {
    match ec {
        EC_UNKNOWN => "Unknown/Uncategorized",
        0x01 => "WFI/WFE",
        0x07 => "FP/ASIMD",
        0x0e => "PSTATE.IL",
        EC_SVC64 => "SVC (AArch64)",
        0x16 => "HVC (AArch64)",
        0x17 => "SMC (AArch64)",
        EC_SYS64 => "MSR/MRS (AArch64)",
        EC_IABT_LOW => "IABT (lower EL)",
        EC_IABT_CUR => "IABT (current EL)",
        EC_PC_ALIGN => "PC Alignment",
        EC_DABT_LOW => "DABT (lower EL)",
        EC_DABT_CUR => "DABT (current EL)",
        EC_SP_ALIGN => "SP Alignment",
        0x2f => "SError",
        0x30 => "Breakpoint (lower EL)",
        0x31 => "Breakpoint (current EL)",
        0x32 => "Software Step (lower EL)",
        0x33 => "Software Step (current EL)",
        0x34 => "Watchpoint (lower EL)",
        0x35 => "Watchpoint (current EL)",
        EC_BRK64 => "BRK (AArch64)",
        _ => "UNRECOGNIZED EC",
    }
}

// ---------------------------------------------------------------------------------------
// fault_info[].

/// A fault handler of the table: `(far, esr, frame)`; `true` when it dealt with the fault,
/// `false` for the caller's "unhandled" path (Linux's non-zero return).
pub type FaultFn = fn(usize, u64, &mut Frame) -> bool;

/// One entry of `fault_info[]`: what to do for a fault status code.
pub struct FaultInfo {
    /// The handler.
    pub handler: FaultFn,
    /// The signal an unhandled fault sends a user task.
    pub sig: u32,
    /// Its `si_code`.
    pub code: u32,
    /// The status's name.
    pub name: &'static str,
}

const fn fi(handler: FaultFn, sig: u32, code: u32, name: &'static str) -> FaultInfo {
    FaultInfo {
        handler,
        sig,
        code,
        name,
    }
}

const fn bad(name: &'static str) -> FaultInfo {
    fi(do_bad, SIGKILL, SI_KERNEL, name)
}

const fn sea(name: &'static str) -> FaultInfo {
    fi(do_sea, SIGBUS, BUS_OBJERR, name)
}

/// Linux's arm64 `fault_info[]`, indexed by DFSC/IFSC.
pub static FAULT_INFO: [FaultInfo; 64] = [
    bad("ttbr address size fault"),
    bad("level 1 address size fault"),
    bad("level 2 address size fault"),
    bad("level 3 address size fault"),
    fi(
        do_translation_fault,
        SIGSEGV,
        SEGV_MAPERR,
        "level 0 translation fault",
    ),
    fi(
        do_translation_fault,
        SIGSEGV,
        SEGV_MAPERR,
        "level 1 translation fault",
    ),
    fi(
        do_translation_fault,
        SIGSEGV,
        SEGV_MAPERR,
        "level 2 translation fault",
    ),
    fi(
        do_translation_fault,
        SIGSEGV,
        SEGV_MAPERR,
        "level 3 translation fault",
    ),
    fi(
        do_page_fault,
        SIGSEGV,
        SEGV_ACCERR,
        "level 0 access flag fault",
    ),
    fi(
        do_page_fault,
        SIGSEGV,
        SEGV_ACCERR,
        "level 1 access flag fault",
    ),
    fi(
        do_page_fault,
        SIGSEGV,
        SEGV_ACCERR,
        "level 2 access flag fault",
    ),
    fi(
        do_page_fault,
        SIGSEGV,
        SEGV_ACCERR,
        "level 3 access flag fault",
    ),
    fi(
        do_page_fault,
        SIGSEGV,
        SEGV_ACCERR,
        "level 0 permission fault",
    ),
    fi(
        do_page_fault,
        SIGSEGV,
        SEGV_ACCERR,
        "level 1 permission fault",
    ),
    fi(
        do_page_fault,
        SIGSEGV,
        SEGV_ACCERR,
        "level 2 permission fault",
    ),
    fi(
        do_page_fault,
        SIGSEGV,
        SEGV_ACCERR,
        "level 3 permission fault",
    ),
    sea("synchronous external abort"),
    bad("synchronous tag check fault"),
    bad("unknown 18"),
    sea("level -1 (translation table walk)"),
    sea("level 0 (translation table walk)"),
    sea("level 1 (translation table walk)"),
    sea("level 2 (translation table walk)"),
    sea("level 3 (translation table walk)"),
    sea("synchronous parity or ECC error"),
    bad("unknown 25"),
    bad("unknown 26"),
    sea("level -1 synchronous parity error (translation table walk)"),
    sea("level 0 synchronous parity error (translation table walk)"),
    sea("level 1 synchronous parity error (translation table walk)"),
    sea("level 2 synchronous parity error (translation table walk)"),
    sea("level 3 synchronous parity error (translation table walk)"),
    bad("unknown 32"),
    fi(do_alignment_fault, SIGBUS, BUS_ADRALN, "alignment fault"),
    bad("unknown 34"),
    bad("unknown 35"),
    bad("unknown 36"),
    bad("unknown 37"),
    bad("unknown 38"),
    bad("unknown 39"),
    bad("unknown 40"),
    bad("level -1 address size fault"),
    bad("unknown 42"),
    fi(
        do_translation_fault,
        SIGSEGV,
        SEGV_MAPERR,
        "level -1 translation fault",
    ),
    bad("unknown 44"),
    bad("unknown 45"),
    bad("unknown 46"),
    bad("unknown 47"),
    bad("TLB conflict abort"),
    bad("Unsupported atomic hardware update fault"),
    bad("unknown 50"),
    bad("unknown 51"),
    bad("implementation fault (lockdown abort)"),
    bad("implementation fault (unsupported exclusive)"),
    bad("unknown 54"),
    bad("unknown 55"),
    bad("unknown 56"),
    bad("unknown 57"),
    bad("unknown 58"),
    bad("unknown 59"),
    bad("unknown 60"),
    bad("section domain fault"),
    bad("page domain fault"),
    bad("unknown 63"),
];

/// The `fault_info[]` entry of `esr` (Linux's `esr_to_fault_info`).
pub fn esr_to_fault_info(esr: u64) -> &'static FaultInfo {
    &FAULT_INFO[esr_fsc(esr)]
}

// ---------------------------------------------------------------------------------------
// What the scenarios observe.

/// The last abort taken on a CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LastAbort {
    /// ESR_EL1.
    pub esr: u64,
    /// FAR_EL1.
    pub far: usize,
    /// The saved pc.
    pub pc: usize,
    /// The saved PSTATE.
    pub pstate: u64,
}

struct PerCpuAbort {
    esr: AtomicU64,
    far: AtomicU64,
    pc: AtomicU64,
    pstate: AtomicU64,
}

static LAST: [PerCpuAbort; MAX_CPUS] = [const {
    PerCpuAbort {
        esr: AtomicU64::new(0),
        far: AtomicU64::new(0),
        pc: AtomicU64::new(0),
        pstate: AtomicU64::new(0),
    }
}; MAX_CPUS];

static ABORTS: AtomicUsize = AtomicUsize::new(0);

fn record(far: usize, f: &Frame) {
    let slot = &LAST[smp::cpu_id()];
    slot.esr.store(f.esr, Ordering::Relaxed);
    slot.far.store(far as u64, Ordering::Relaxed);
    slot.pc.store(f.regs.pc, Ordering::Relaxed);
    slot.pstate.store(f.regs.pstate, Ordering::Relaxed);
    ABORTS.fetch_add(1, Ordering::Relaxed);
    crate::percpu::count_fault();
}

/// The last abort this CPU took.
pub fn last_abort() -> LastAbort {
    let slot = &LAST[smp::cpu_id()];
    LastAbort {
        esr: slot.esr.load(Ordering::Relaxed),
        far: slot.far.load(Ordering::Relaxed) as usize,
        pc: slot.pc.load(Ordering::Relaxed) as usize,
        pstate: slot.pstate.load(Ordering::Relaxed),
    }
}

/// Aborts taken since boot, on every CPU.
pub fn aborts() -> usize {
    ABORTS.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------
// The entry point and the handlers of the table.

/// Dispatch a data or instruction abort to its handler (Linux's `do_mem_abort`).
pub fn do_mem_abort(far: usize, esr: u64, f: &mut Frame) {
    record(far, f);
    let inf = esr_to_fault_info(esr);
    if (inf.handler)(far, esr, f) {
        return;
    }
    if !f.user_mode() {
        die_kernel_fault(inf.name, far, esr, f);
    }
    arm64_force_sig_fault(SigInfo::new(inf.sig, inf.code, far), inf.name, esr);
}

/// Not handled (Linux's `do_bad`).
fn do_bad(_far: usize, _esr: u64, _f: &mut Frame) -> bool {
    false
}

/// A synchronous external abort (Linux's `do_sea`, without RAS): not handled.
fn do_sea(_far: usize, _esr: u64, _f: &mut Frame) -> bool {
    false
}

/// An alignment fault (Linux's `do_alignment_fault`): a bad area.
fn do_alignment_fault(far: usize, esr: u64, f: &mut Frame) -> bool {
    do_bad_area(far, esr, f);
    true
}

/// A translation fault (Linux's `do_translation_fault`): a user-half address goes to
/// `do_page_fault`, anything else is a bad area.
fn do_translation_fault(far: usize, esr: u64, f: &mut Frame) -> bool {
    if far < TASK_SIZE {
        return do_page_fault(far, esr, f);
    }
    do_bad_area(far, esr, f);
    true
}

/// An access nothing maps for this context (Linux's `do_bad_area`).
fn do_bad_area(far: usize, esr: u64, f: &mut Frame) {
    if f.user_mode() {
        let inf = esr_to_fault_info(esr);
        arm64_force_sig_fault(SigInfo::new(inf.sig, inf.code, far), inf.name, esr);
    }
    __do_kernel_fault(far, esr, f);
}

/// An instruction abort taken at EL1.
fn is_el1_instruction_abort(esr: u64) -> bool {
    esr_ec(esr) == EC_IABT_CUR
}

/// A permission fault taken at EL1 (Linux's `is_el1_permission_fault`).
fn is_el1_permission_fault(esr: u64) -> bool {
    matches!(esr_ec(esr), EC_DABT_CUR | EC_IABT_CUR) && fsc_is_permission(esr_fsc(esr))
}

/// The access a syndrome describes, for the shared VMA code.
fn access_of(esr: u64) -> Access {
    let exec = matches!(esr_ec(esr), EC_IABT_LOW | EC_IABT_CUR);
    Access {
        write: !exec && esr & ESR_WNR != 0 && esr & ESR_CM == 0,
        exec,
        present: fsc_is_permission(esr_fsc(esr)) || esr_fsc(esr) & !3 == 0x08,
    }
}

/// Whether this CPU runs a user address space (TTBR0 is not the reserved table).
fn has_user_space() -> bool {
    mmu::current_ttbr0() != mmu::reserved_phys() && mm::has_current()
}

/// A fault on a user-half address (Linux's `do_page_fault`): a kernel access under PAN
/// outside the uaccess routines dies; otherwise the current address space's VMAs serve it
/// (find_vma, stack expansion, access_error, demand-zero); a user task that cannot be
/// served gets its signal, the kernel goes to `__do_kernel_fault`.
fn do_page_fault(far: usize, esr: u64, f: &mut Frame) -> bool {
    let user = f.user_mode();
    if !user && far < TASK_SIZE && is_el1_permission_fault(esr) {
        if is_el1_instruction_abort(esr) {
            die_kernel_fault("execution of user memory", far, esr, f);
        }
        if extable_runtime::search_exception_tables(f.regs.pc as usize).is_none() {
            die_kernel_fault(
                "access to user memory outside uaccess routines",
                far,
                esr,
                f,
            );
        }
    }
    if !has_user_space() {
        if user {
            arm64_force_sig_fault(SigInfo::new(SIGSEGV, SEGV_MAPERR, far), "no mm", esr);
        }
        __do_kernel_fault(far, esr, f);
        return true;
    }
    let served = if far < TASK_SIZE {
        mm::do_user_addr_fault(far, access_of(esr))
    } else {
        Err(SigInfo::new(SIGSEGV, SEGV_MAPERR, far))
    };
    match served {
        Ok(_) => {}
        Err(info) if user => arm64_force_sig_fault(info, esr_to_fault_info(esr).name, esr),
        Err(_) => __do_kernel_fault(far, esr, f),
    }
    true
}

/// The fault class of a syndrome, for the exception-table handlers.
fn fault_kind(esr: u64) -> FaultKind {
    let fsc = esr_fsc(esr);
    if fsc_is_translation(fsc) {
        FaultKind::NotMapped
    } else if fsc_is_permission(fsc) || fsc & !3 == 0x08 {
        FaultKind::Permission
    } else if fsc == 0x21 || fsc == 0x10 {
        FaultKind::Bus
    } else {
        FaultKind::Other
    }
}

/// The kernel faulted (Linux's `__do_kernel_fault`): fixed through the exception table
/// (never for an instruction abort), or `die_kernel_fault` with the reason.
fn __do_kernel_fault(far: usize, esr: u64, f: &mut Frame) {
    if !is_el1_instruction_abort(esr) {
        let trap = Trap::new(esr_ec(esr), fault_kind(esr))
            .with_error_code(esr)
            .with_address(far);
        if fixup_exception(&mut f.regs, &trap).is_ok() {
            return;
        }
    }
    let msg = if is_el1_permission_fault(esr) {
        if esr & ESR_WNR != 0 {
            "write to read-only memory"
        } else if is_el1_instruction_abort(esr) {
            "execute from non-executable memory"
        } else {
            "read from unreadable memory"
        }
    } else if far < PAGE_SIZE {
        "NULL pointer dereference"
    } else {
        "paging request"
    };
    die_kernel_fault(msg, far, esr, f)
}

/// Linux's `mem_abort_decode` and `data_abort_decode`: the syndrome, field by field.
pub fn mem_abort_decode(esr: u64) {
    let ec = esr_ec(esr);
    println!("Mem abort info:");
    println!("  ESR = {:#018x}", esr);
    println!(
        "  EC = {:#04x}: {}, IL = {} bits",
        ec,
        esr_class_str(ec),
        if esr & ESR_IL != 0 { 32 } else { 16 }
    );
    println!(
        "  SET = {}, FnV = {}",
        (esr >> 11) & 3,
        (esr & ESR_FNV != 0) as u8
    );
    println!(
        "  EA = {}, S1PTW = {}",
        (esr & ESR_EA != 0) as u8,
        (esr & ESR_S1PTW != 0) as u8
    );
    println!(
        "  FSC = {:#04x}: {}",
        esr_fsc(esr),
        esr_to_fault_info(esr).name
    );
    if matches!(ec, EC_DABT_LOW | EC_DABT_CUR) {
        data_abort_decode(esr);
    }
}

fn data_abort_decode(esr: u64) {
    let iss = esr_iss(esr);
    let iss2 = (esr >> 32) & 0x00ff_ffff;
    println!("Data abort info:");
    if esr & ESR_ISV != 0 {
        println!("  Access size = {} byte(s)", 1u32 << ((iss >> 22) & 3));
        println!("  SSE = {}, SRT = {}", (iss >> 21) & 1, (iss >> 16) & 0x1f);
        println!("  SF = {}, AR = {}", (iss >> 15) & 1, (iss >> 14) & 1);
    } else {
        println!("  ISV = 0, ISS = {:#010x}, ISS2 = {:#010x}", iss, iss2);
    }
    println!(
        "  CM = {}, WnR = {}, TnD = {}, TagAccess = {}",
        (esr & ESR_CM != 0) as u8,
        (esr & ESR_WNR != 0) as u8,
        (iss2 >> 10) & 1,
        (iss2 >> 9) & 1
    );
    println!(
        "  GCS = {}, Overlay = {}, DirtyBit = {}, Xs = {}",
        (iss2 >> 8) & 1,
        (iss2 >> 6) & 1,
        (iss2 >> 5) & 1,
        iss2 & 0x1f
    );
}

/// Print the table walk for `addr` (Linux's `show_pte`).
pub fn show_pte(addr: usize) {
    let (which, root) = if addr < TASK_SIZE {
        let root = mmu::current_ttbr0();
        if root == mmu::reserved_phys() {
            println!("[{:016x}] user address but active_mm is swapper", addr);
            return;
        }
        ("user", root)
    } else if addr >= mmu::KIMAGE_VOFFSET {
        ("swapper", mmu::current_ttbr1())
    } else {
        println!(
            "[{:016x}] address between user and kernel address ranges",
            addr
        );
        return;
    };
    println!(
        "{} pgtable: 4k pages, {}-bit VAs, pgdp={:016x}",
        which,
        mmu::VA_BITS,
        root
    );
    // Three levels: p4d and pud are folded into the pgd, as Linux prints them.
    let [l1, l2, l3] = mmu::walk(root, addr).desc;
    let l1 = l1.unwrap_or(0);
    crate::print!(
        "[{:016x}] pgd={:016x}, p4d={:016x}, pud={:016x}",
        addr,
        l1,
        l1,
        l1
    );
    for (name, d) in [("pmd", l2), ("pte", l3)] {
        if let Some(d) = d {
            crate::print!(", {}={:016x}", name, d);
        }
    }
    println!();
}

/// An unhandled kernel abort (Linux's `die_kernel_fault`): the report, then `die`.
pub fn die_kernel_fault(msg: &str, addr: usize, esr: u64, f: &mut Frame) -> ! {
    println!(
        "Unable to handle kernel {} at virtual address {:016x}",
        msg, addr
    );
    mem_abort_decode(esr);
    show_pte(addr);
    die("Oops", f, esr)
}
