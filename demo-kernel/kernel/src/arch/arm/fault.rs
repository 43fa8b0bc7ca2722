//! Data and prefetch aborts, after Linux's arch/arm/mm/fault.c and fsr-2level.c (seed 003):
//! `do_DataAbort` / `do_PrefetchAbort` dispatch through the `fsr_info` / `ifsr_info` tables
//! indexed by the fault status; `do_translation_fault` copies first-level entries of the
//! kernel half from the reference table; `do_page_fault` serves user addresses through the
//! shared VMA code; `__do_kernel_fault` tries the exception table and otherwise oopses.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use extable_runtime::arch::arm::PtRegs;
use extable_runtime::{ExRegs, FaultKind, Trap};

use super::mmu::{self, TASK_SIZE};
use super::traps::{arm_notify_die, die};
use crate::mm::{self, Access, PAGE_SIZE};
use crate::println;
use crate::signal::{
    force_sig, SigInfo, BUS_ADRALN, BUS_OBJERR, SEGV_ACCERR, SEGV_MAPERR, SIGBUS, SIGKILL, SIGSEGV,
};

/// DFSR/IFSR: the access was a write (WnR).
pub const FSR_WRITE: u32 = 1 << 11;
/// DFSR: bit 4 of the fault status.
pub const FSR_FS4: u32 = 1 << 10;
/// DFSR: bits 3:0 of the fault status.
pub const FSR_FS3_0: u32 = 0xf;
/// DFSR: the fault came from a cache maintenance operation.
pub const FSR_CM: u32 = 1 << 13;
/// Linux's software flag marking a prefetch abort's status (never set by hardware).
pub const FSR_LNX_PF: u32 = 1 << 31;

/// Fault status of a first-level (section) permission fault.
const FS_L1_PERM: usize = 0x0d;
/// Fault status of a second-level (page) permission fault.
const FS_L2_PERM: usize = 0x0f;

/// The five-bit fault status of a short-descriptor FSR: bits 3:0 and bit 10 (`fsr_fs`).
pub const fn fsr_fs(fsr: u32) -> usize {
    ((fsr & FSR_FS3_0) | ((fsr & FSR_FS4) >> 6)) as usize
}

/// Whether the status is a permission fault (`is_permission_fault`).
pub const fn is_permission_fault(fsr: u32) -> bool {
    let fs = fsr_fs(fsr);
    fs == FS_L1_PERM || fs == FS_L2_PERM
}

/// Whether the access was a write (`is_write_fault`): WnR, not from cache maintenance.
pub const fn is_write_fault(fsr: u32) -> bool {
    fsr & FSR_WRITE != 0 && fsr & FSR_CM == 0
}

/// What a fault handler of the table did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Dealt with (served, signalled, fixed up): return from the exception.
    Handled,
    /// Not dealt with: the caller prints "Unhandled fault" and notifies/dies.
    Unhandled,
}

/// A fault handler: `(address, status, registers)`.
pub type FaultFn = fn(usize, u32, &mut PtRegs) -> Outcome;

/// One entry of `fsr_info` / `ifsr_info`: what to do for a fault status.
pub struct FsrInfo {
    /// The handler.
    pub handler: FaultFn,
    /// The signal an unhandled fault sends a user task.
    pub sig: u32,
    /// Its `si_code`.
    pub code: u32,
    /// The status's name in "Unhandled fault" lines.
    pub name: &'static str,
}

const fn info(handler: FaultFn, sig: u32, code: u32, name: &'static str) -> FsrInfo {
    FsrInfo {
        handler,
        sig,
        code,
        name,
    }
}

/// Data abort statuses (Linux's fsr-2level.c `fsr_info`).
pub static FSR_INFO: [FsrInfo; 32] = [
    info(do_bad, SIGSEGV, 0, "vector exception"),
    info(do_bad, SIGBUS, BUS_ADRALN, "alignment exception"),
    info(do_bad, SIGKILL, 0, "terminal exception"),
    info(do_bad, SIGBUS, BUS_ADRALN, "alignment exception"),
    info(do_bad, SIGBUS, 0, "external abort on linefetch"),
    info(
        do_translation_fault,
        SIGSEGV,
        SEGV_MAPERR,
        "section translation fault",
    ),
    info(do_bad, SIGBUS, 0, "external abort on linefetch"),
    info(
        do_page_fault,
        SIGSEGV,
        SEGV_MAPERR,
        "page translation fault",
    ),
    info(do_bad, SIGBUS, 0, "external abort on non-linefetch"),
    info(do_bad, SIGSEGV, SEGV_ACCERR, "section domain fault"),
    info(do_bad, SIGBUS, 0, "external abort on non-linefetch"),
    info(do_bad, SIGSEGV, SEGV_ACCERR, "page domain fault"),
    info(do_bad, SIGBUS, 0, "external abort on translation"),
    info(
        do_sect_fault,
        SIGSEGV,
        SEGV_ACCERR,
        "section permission fault",
    ),
    info(do_bad, SIGBUS, 0, "external abort on translation"),
    info(do_page_fault, SIGSEGV, SEGV_ACCERR, "page permission fault"),
    info(do_bad, SIGBUS, 0, "unknown 16"),
    info(do_bad, SIGBUS, 0, "unknown 17"),
    info(do_bad, SIGBUS, 0, "unknown 18"),
    info(do_bad, SIGBUS, 0, "unknown 19"),
    info(do_bad, SIGBUS, 0, "lock abort"),
    info(do_bad, SIGBUS, 0, "unknown 21"),
    info(do_bad, SIGBUS, BUS_OBJERR, "imprecise external abort"),
    info(do_bad, SIGBUS, 0, "unknown 23"),
    info(do_bad, SIGBUS, 0, "dcache parity error"),
    info(do_bad, SIGBUS, 0, "unknown 25"),
    info(do_bad, SIGBUS, 0, "unknown 26"),
    info(do_bad, SIGBUS, 0, "unknown 27"),
    info(do_bad, SIGBUS, 0, "unknown 28"),
    info(do_bad, SIGBUS, 0, "unknown 29"),
    info(do_bad, SIGBUS, 0, "unknown 30"),
    info(do_bad, SIGBUS, 0, "unknown 31"),
];

/// Prefetch abort statuses (Linux's fsr-2level.c `ifsr_info`).
pub static IFSR_INFO: [FsrInfo; 32] = [
    info(do_bad, SIGBUS, 0, "unknown 0"),
    info(do_bad, SIGBUS, 0, "unknown 1"),
    info(do_bad, SIGBUS, 0, "debug event"),
    info(do_bad, SIGSEGV, SEGV_ACCERR, "section access flag fault"),
    info(do_bad, SIGBUS, 0, "unknown 4"),
    info(
        do_translation_fault,
        SIGSEGV,
        SEGV_MAPERR,
        "section translation fault",
    ),
    info(do_bad, SIGSEGV, SEGV_ACCERR, "page access flag fault"),
    info(
        do_page_fault,
        SIGSEGV,
        SEGV_MAPERR,
        "page translation fault",
    ),
    info(do_bad, SIGBUS, 0, "external abort on non-linefetch"),
    info(do_bad, SIGSEGV, SEGV_ACCERR, "section domain fault"),
    info(do_bad, SIGBUS, 0, "unknown 10"),
    info(do_bad, SIGSEGV, SEGV_ACCERR, "page domain fault"),
    info(do_bad, SIGBUS, 0, "external abort on translation"),
    info(
        do_sect_fault,
        SIGSEGV,
        SEGV_ACCERR,
        "section permission fault",
    ),
    info(do_bad, SIGBUS, 0, "external abort on translation"),
    info(do_page_fault, SIGSEGV, SEGV_ACCERR, "page permission fault"),
    info(do_bad, SIGBUS, 0, "unknown 16"),
    info(do_bad, SIGBUS, 0, "unknown 17"),
    info(do_bad, SIGBUS, 0, "unknown 18"),
    info(do_bad, SIGBUS, 0, "unknown 19"),
    info(do_bad, SIGBUS, 0, "unknown 20"),
    info(do_bad, SIGBUS, 0, "unknown 21"),
    info(do_bad, SIGBUS, 0, "unknown 22"),
    info(do_bad, SIGBUS, 0, "unknown 23"),
    info(do_bad, SIGBUS, 0, "unknown 24"),
    info(do_bad, SIGBUS, 0, "unknown 25"),
    info(do_bad, SIGBUS, 0, "unknown 26"),
    info(do_bad, SIGBUS, 0, "unknown 27"),
    info(do_bad, SIGBUS, 0, "unknown 28"),
    info(do_bad, SIGBUS, 0, "unknown 29"),
    info(do_bad, SIGBUS, 0, "unknown 30"),
    info(do_bad, SIGBUS, 0, "unknown 31"),
];

// ---------------------------------------------------------------------------------------
// What the scenarios observe.

/// The last abort taken: status register, address, and whether it was a prefetch abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastAbort {
    /// DFSR or IFSR as read.
    pub fsr: u32,
    /// DFAR or IFAR.
    pub far: usize,
    /// The saved pc (the faulting instruction).
    pub pc: usize,
    /// The saved CPSR.
    pub cpsr: u32,
    /// A prefetch abort (IFSR/IFAR) rather than a data abort.
    pub prefetch: bool,
}

static LAST_FSR: AtomicU32 = AtomicU32::new(0);
static LAST_FAR: AtomicUsize = AtomicUsize::new(0);
static LAST_PC: AtomicUsize = AtomicUsize::new(0);
static LAST_CPSR: AtomicU32 = AtomicU32::new(0);
static LAST_PREFETCH: AtomicU32 = AtomicU32::new(0);
static ABORTS: AtomicUsize = AtomicUsize::new(0);
static L1_COPIES: AtomicUsize = AtomicUsize::new(0);

fn record(fsr: u32, far: usize, regs: &PtRegs, prefetch: bool) {
    LAST_FSR.store(fsr, Ordering::Relaxed);
    LAST_FAR.store(far, Ordering::Relaxed);
    LAST_PC.store(regs.pc(), Ordering::Relaxed);
    LAST_CPSR.store(regs.cpsr(), Ordering::Relaxed);
    LAST_PREFETCH.store(u32::from(prefetch), Ordering::Relaxed);
    ABORTS.fetch_add(1, Ordering::Relaxed);
    crate::percpu::count_fault();
}

/// The last abort taken.
pub fn last_abort() -> LastAbort {
    LastAbort {
        fsr: LAST_FSR.load(Ordering::Relaxed),
        far: LAST_FAR.load(Ordering::Relaxed),
        pc: LAST_PC.load(Ordering::Relaxed),
        cpsr: LAST_CPSR.load(Ordering::Relaxed),
        prefetch: LAST_PREFETCH.load(Ordering::Relaxed) != 0,
    }
}

/// Aborts (data and prefetch) taken since boot.
pub fn aborts() -> usize {
    ABORTS.load(Ordering::Relaxed)
}

/// First-level entries `do_translation_fault` copied from the reference table since boot.
pub fn l1_copies() -> usize {
    L1_COPIES.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------
// Entry points from entry.S.

/// Dispatch a data abort to its handler (Linux's `do_DataAbort`); called by
/// `v7_early_abort` with DFAR, DFSR and the saved frame.
///
/// # Safety
/// `regs` must point to the frame `__dabt_svc`/`__dabt_usr` built on the stack.
#[no_mangle]
pub unsafe extern "C" fn do_DataAbort(addr: usize, fsr: u32, regs: *mut PtRegs) {
    // SAFETY: the entry code passes its frame, live and exclusively ours until we return.
    let regs = unsafe { &mut *regs };
    record(fsr, addr, regs, false);
    let inf = &FSR_INFO[fsr_fs(fsr)];
    if (inf.handler)(addr, fsr & !FSR_LNX_PF, regs) == Outcome::Handled {
        return;
    }
    println!(
        "Unhandled fault: {} ({:#05x}) at {:#010x}",
        inf.name, fsr, addr
    );
    show_pte(addr);
    arm_notify_die("", regs, SigInfo::new(inf.sig, inf.code, addr), fsr);
}

/// Dispatch a prefetch abort to its handler (Linux's `do_PrefetchAbort`); called by
/// `v7_pabort` with IFAR, IFSR and the saved frame.
///
/// # Safety
/// `regs` must point to the frame `__pabt_svc`/`__pabt_usr` built on the stack.
#[no_mangle]
pub unsafe extern "C" fn do_PrefetchAbort(addr: usize, ifsr: u32, regs: *mut PtRegs) {
    // SAFETY: as in `do_DataAbort`.
    let regs = unsafe { &mut *regs };
    record(ifsr, addr, regs, true);
    let inf = &IFSR_INFO[fsr_fs(ifsr)];
    if (inf.handler)(addr, ifsr | FSR_LNX_PF, regs) == Outcome::Handled {
        return;
    }
    println!(
        "Unhandled prefetch abort: {} ({:#05x}) at {:#010x}",
        inf.name, ifsr, addr
    );
    arm_notify_die("", regs, SigInfo::new(inf.sig, inf.code, addr), ifsr);
}

// ---------------------------------------------------------------------------------------
// The handlers of the tables.

/// Always "not handled" (Linux's `do_bad`).
fn do_bad(_addr: usize, _fsr: u32, _regs: &mut PtRegs) -> Outcome {
    Outcome::Unhandled
}

/// A section permission fault (Linux's `do_sect_fault`): the user touched a kernel
/// section, or the kernel wrote a read-only one.
fn do_sect_fault(addr: usize, fsr: u32, regs: &mut PtRegs) -> Outcome {
    do_bad_area(addr, fsr, regs);
    Outcome::Handled
}

/// A first-level translation fault (Linux's `do_translation_fault`). User addresses go to
/// `do_page_fault`. A kernel address whose entry exists in the reference table (init_mm)
/// but not in the current table gets it copied, and the access is retried: the ARM
/// counterpart of x86's vmalloc_fault. Anything else is a bad area.
fn do_translation_fault(addr: usize, fsr: u32, regs: &mut PtRegs) -> Outcome {
    if addr < TASK_SIZE {
        return do_page_fault(addr, fsr, regs);
    }
    if regs.user_mode() {
        do_bad_area(addr, fsr, regs);
        return Outcome::Handled;
    }
    let pgd = mmu::cpu_get_pgd();
    let pgd_k = mmu::swapper();
    if pgd_k.l1_none(addr) || pgd == pgd_k || !pgd.l1_none(addr) {
        do_bad_area(addr, fsr, regs);
        return Outcome::Handled;
    }
    pgd.copy_l1_from(pgd_k, addr);
    L1_COPIES.fetch_add(1, Ordering::Relaxed);
    Outcome::Handled
}

/// The access a fault status describes, for the shared VMA code (`access_error`'s mask).
fn access_of(fsr: u32) -> Access {
    let exec = fsr & FSR_LNX_PF != 0;
    Access {
        write: !exec && is_write_fault(fsr),
        exec,
        present: is_permission_fault(fsr),
    }
}

/// A page translation or permission fault, or a section translation fault on a user
/// address (Linux's `do_page_fault` / `__do_page_fault`): served through the current
/// address space's VMAs (find_vma, stack expansion, access_error, demand paging); a user
/// task that cannot be served gets its signal, the kernel goes to `__do_kernel_fault`.
fn do_page_fault(addr: usize, fsr: u32, regs: &mut PtRegs) -> Outcome {
    let user = regs.user_mode();
    // No user context, or a kernel access to user memory from code that has no fixup: the
    // kernel must not take the fault (Linux checks search_exception_tables here).
    if !mm::has_current()
        || (!user && extable_runtime::search_exception_tables(regs.pc()).is_none())
    {
        __do_kernel_fault(addr, fsr, regs);
        return Outcome::Handled;
    }
    let served = if addr < TASK_SIZE {
        mm::do_user_addr_fault(addr, access_of(fsr))
    } else {
        Err(SigInfo::new(SIGSEGV, SEGV_MAPERR, addr))
    };
    match served {
        Ok(_) => {}
        Err(info) if user => __do_user_fault(addr, fsr, info),
        Err(_) => __do_kernel_fault(addr, fsr, regs),
    }
    Outcome::Handled
}

/// An access to memory that is not there for this context (Linux's `do_bad_area`).
fn do_bad_area(addr: usize, fsr: u32, regs: &mut PtRegs) {
    if regs.user_mode() {
        __do_user_fault(addr, fsr, SigInfo::new(SIGSEGV, SEGV_MAPERR, addr));
    } else {
        __do_kernel_fault(addr, fsr, regs);
    }
}

/// Signal the user task (Linux's `__do_user_fault`, with its CONFIG_DEBUG_USER line).
fn __do_user_fault(addr: usize, fsr: u32, info: SigInfo) -> ! {
    println!(
        "user: unhandled page fault ({}) at {:#010x}, code {:#05x}",
        info.signo, addr, fsr
    );
    force_sig(info)
}

/// The fault class of a status, for the exception-table handlers.
fn fault_kind(fsr: u32) -> FaultKind {
    match fsr_fs(fsr) {
        0x05 | 0x07 => FaultKind::NotMapped,
        0x03 | 0x06 | 0x09 | 0x0b | 0x0d | 0x0f => FaultKind::Permission,
        0x01 | 0x04 | 0x08 | 0x0c | 0x0e | 0x16 => FaultKind::Bus,
        _ => FaultKind::Other,
    }
}

/// The kernel faulted (Linux's `__do_kernel_fault`): fixed through the exception table, or
/// "Unable to handle kernel ...", the page-table walk, and die.
fn __do_kernel_fault(addr: usize, fsr: u32, regs: &mut PtRegs) {
    let trap = Trap::new(fsr, fault_kind(fsr))
        .with_error_code(u64::from(fsr))
        .with_address(addr);
    if extable_runtime::fixup_exception(regs, &trap).is_ok() {
        return;
    }
    println!("8<--- cut here ---");
    println!(
        "Unable to handle kernel {} at virtual address {:08x}",
        if addr < PAGE_SIZE {
            "NULL pointer dereference"
        } else {
            "paging request"
        },
        addr
    );
    show_pte(addr);
    die("Oops", regs, fsr)
}

/// Print the page-table walk for `addr` in the current table (Linux's `show_pte`).
pub fn show_pte(addr: usize) {
    let pgd = mmu::cpu_get_pgd();
    let which = if pgd == mmu::swapper() {
        " (init_mm)"
    } else {
        ""
    };
    println!("pgd = {:08x}{}", pgd.addr(), which);
    let walk = pgd.walk(addr);
    match walk.pte {
        Some(pte) => println!("[{:08x}] *pgd={:08x}, *pte={:08x}", addr, walk.pgd, pte),
        None => println!("[{:08x}] *pgd={:08x}", addr, walk.pgd),
    }
}
