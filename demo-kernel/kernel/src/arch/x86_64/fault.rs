//! `exc_page_fault` (arch/x86/mm/fault.c, seeds 000 and 002): read CR2, decode the error
//! code, split kernel-address from user-address faults; vmalloc_fault; the table fixup; the
//! oops.

use core::sync::atomic::{AtomicUsize, Ordering};

use extable_runtime::arch::x86_64::{trap, PtRegs};
use extable_runtime::{fixup_exception, FaultKind, Trap};

use super::cpu::{self, read_cr2, RFLAGS_AC};
use super::paging::{self, table, PTE_ADDR, PTE_P, TASK_SIZE_MAX, VMALLOC_END, VMALLOC_START};
use super::traps::{die, show_regs};
use crate::mm::{self, Access, PAGE_SIZE};
use crate::println;
use crate::signal::{force_sig, SigInfo, SEGV_MAPERR, SIGSEGV};

/// Error code bit: the page was present (a protection fault).
pub const X86_PF_PROT: u64 = 1 << 0;
/// Error code bit: a write.
pub const X86_PF_WRITE: u64 = 1 << 1;
/// Error code bit: from user mode.
pub const X86_PF_USER: u64 = 1 << 2;
/// Error code bit: a reserved bit was set in a page-table entry.
pub const X86_PF_RSVD: u64 = 1 << 3;
/// Error code bit: an instruction fetch.
pub const X86_PF_INSTR: u64 = 1 << 4;
/// Error code bit: a protection-key violation.
pub const X86_PF_PK: u64 = 1 << 5;
/// Error code bit: a shadow-stack access.
pub const X86_PF_SHSTK: u64 = 1 << 6;

/// Page faults taken since boot.
pub static PAGE_FAULTS: AtomicUsize = AtomicUsize::new(0);
/// Faults that vmalloc_fault looked at.
pub static VMALLOC_FAULTS: AtomicUsize = AtomicUsize::new(0);
/// Faults vmalloc_fault fixed by copying the top-level entry.
pub static VMALLOC_FIXED: AtomicUsize = AtomicUsize::new(0);
/// SMAP violations reported.
pub static SMAP_VIOLATIONS: AtomicUsize = AtomicUsize::new(0);

/// The decoded error code, one field per bit, as the issue lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfError {
    /// P: protection fault on a present page (else: not present).
    pub present: bool,
    /// W/R: write (else read).
    pub write: bool,
    /// U/S: from user mode.
    pub user: bool,
    /// RSVD: reserved bit set in a paging entry.
    pub rsvd: bool,
    /// I/D: instruction fetch.
    pub instr: bool,
    /// PK: protection key.
    pub pk: bool,
    /// SS: shadow stack.
    pub shstk: bool,
}

impl PfError {
    /// Decode `code`.
    pub fn decode(code: u64) -> Self {
        PfError {
            present: code & X86_PF_PROT != 0,
            write: code & X86_PF_WRITE != 0,
            user: code & X86_PF_USER != 0,
            rsvd: code & X86_PF_RSVD != 0,
            instr: code & X86_PF_INSTR != 0,
            pk: code & X86_PF_PK != 0,
            shstk: code & X86_PF_SHSTK != 0,
        }
    }
}

impl core::fmt::Display for PfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "P={} W/R={} U/S={} RSVD={} I/D={} PK={} SS={}",
            self.present as u8,
            self.write as u8,
            self.user as u8,
            self.rsvd as u8,
            self.instr as u8,
            self.pk as u8,
            self.shstk as u8
        )
    }
}

/// The last page fault, for scenarios to inspect: (address, error code, rip).
pub static LAST_FAULT: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];

/// Linux's `fault_in_kernel_space`: the top half belongs to the kernel.
fn fault_in_kernel_space(address: usize) -> bool {
    address >= TASK_SIZE_MAX
}

/// The #PF handler (Linux's `exc_page_fault` → `handle_page_fault`).
#[no_mangle]
extern "C" fn exc_page_fault(regs: &mut PtRegs, error_code: u64, _vector: u64) {
    let address = read_cr2();
    PAGE_FAULTS.fetch_add(1, Ordering::Relaxed);
    crate::percpu::count_fault();
    LAST_FAULT[0].store(address, Ordering::Relaxed);
    LAST_FAULT[1].store(error_code as usize, Ordering::Relaxed);
    LAST_FAULT[2].store(regs.rip as usize, Ordering::Relaxed);
    if fault_in_kernel_space(address) {
        do_kern_addr_fault(regs, error_code, address);
    } else {
        do_user_addr_fault(regs, error_code, address);
    }
}

/// Copy the missing top-level entry of a vmalloc address from the reference table into the
/// current one (seed 002). `true` when the access can be retried.
fn vmalloc_fault(address: usize) -> bool {
    if !(VMALLOC_START..VMALLOC_END).contains(&address) {
        return false;
    }
    VMALLOC_FAULTS.fetch_add(1, Ordering::Relaxed);
    let i = paging::index(address, 4);
    // SAFETY: both are live top-level tables; one entry of each is read or written.
    let (pgd, pgd_k) = unsafe {
        (
            &mut table(paging::current_root())[i],
            table(paging::reference_pa())[i],
        )
    };
    if pgd_k & PTE_P == 0 {
        return false;
    }
    if *pgd & PTE_P == 0 {
        *pgd = pgd_k;
        VMALLOC_FIXED.fetch_add(1, Ordering::Relaxed);
    } else if *pgd & PTE_ADDR != pgd_k & PTE_ADDR {
        println!(
            "vmalloc_fault: top-level entry {} differs from the reference",
            i
        );
        return false;
    }
    // With 4-level paging the copy happens at the top; the lower levels are shared.
    paging::walk(paging::current_root(), address).is_some()
}

/// A fault on a kernel address (Linux's `do_kern_addr_fault`).
fn do_kern_addr_fault(regs: &mut PtRegs, error_code: u64, address: usize) {
    if error_code & (X86_PF_RSVD | X86_PF_USER | X86_PF_PROT) == 0 && vmalloc_fault(address) {
        return;
    }
    bad_area_nosemaphore(regs, error_code, address, SEGV_MAPERR);
}

/// A fault on a user address (Linux's `do_user_addr_fault`).
fn do_user_addr_fault(regs: &mut PtRegs, error_code: u64, address: usize) {
    let e = PfError::decode(error_code);
    if !e.user && cpu::smap_on() && regs.rflags & RFLAGS_AC == 0 {
        // The kernel touched user memory outside STAC/CLAC (or tried to run it).
        if e.present {
            SMAP_VIOLATIONS.fetch_add(1, Ordering::Relaxed);
            println!(
                "SMAP violation: kernel {} of user address {:#x} at rip {:#x} outside STAC/CLAC",
                if e.instr {
                    "execution"
                } else if e.write {
                    "write"
                } else {
                    "read"
                },
                address,
                regs.rip
            );
        }
        bad_area_nosemaphore(regs, error_code, address, SEGV_MAPERR);
        return;
    }
    if e.rsvd {
        page_fault_oops(regs, error_code, address);
    }
    if !e.user && !mm::has_current() {
        // No user address space: nothing to page in (Linux: no mm / faulthandler_disabled).
        bad_area_nosemaphore(regs, error_code, address, SEGV_MAPERR);
        return;
    }
    let access = Access {
        write: e.write,
        exec: e.instr,
        present: e.present,
    };
    match mm::do_user_addr_fault(address, access) {
        Ok(_) => {}
        Err(info) => bad_area(regs, error_code, info),
    }
}

fn bad_area_nosemaphore(regs: &mut PtRegs, error_code: u64, address: usize, code: u32) {
    bad_area(regs, error_code, SigInfo::new(SIGSEGV, code, address));
}

/// Signal a user task, or fix up / oops a kernel access (Linux's `__bad_area_nosemaphore`).
fn bad_area(regs: &mut PtRegs, error_code: u64, info: SigInfo) {
    if regs.user_mode() {
        show_signal_msg(regs, error_code, info.addr);
        force_sig(info);
    }
    kernelmode_fixup_or_oops(regs, error_code, info.addr);
}

/// Linux's `show_signal_msg`.
fn show_signal_msg(regs: &PtRegs, error_code: u64, address: usize) {
    println!(
        "demo[1]: segfault at {:x} ip {:016x} sp {:016x} error {:x}",
        address, regs.rip, regs.rsp, error_code
    );
}

/// Fix a kernel fault through the exception table, or oops.
fn kernelmode_fixup_or_oops(regs: &mut PtRegs, error_code: u64, address: usize) {
    let kind = if error_code & X86_PF_PROT != 0 {
        FaultKind::Permission
    } else {
        FaultKind::NotMapped
    };
    let t = Trap::new(trap::PF, kind)
        .with_error_code(error_code)
        .with_address(address);
    if fixup_exception(regs, &t).is_ok() {
        return;
    }
    page_fault_oops(regs, error_code, address);
}

/// Linux's `show_fault_oops` + `page_fault_oops`: the BUG lines, the decoded error code,
/// the registers, then die.
pub fn page_fault_oops(regs: &PtRegs, error_code: u64, address: usize) -> ! {
    let e = PfError::decode(error_code);
    if address < PAGE_SIZE && !regs.user_mode() {
        println!(
            "BUG: kernel NULL pointer dereference, address: {:016x}",
            address
        );
    } else {
        println!(
            "BUG: unable to handle page fault for address: {:016x}",
            address
        );
    }
    if e.instr && e.present && !fault_in_kernel_space(address) && !e.user {
        println!("unable to execute userspace code (SMEP?) (uid: 0)");
    }
    println!(
        "#PF: {} {} in {} mode",
        if e.user { "user" } else { "supervisor" },
        if e.instr {
            "instruction fetch"
        } else if e.write {
            "write access"
        } else {
            "read access"
        },
        if regs.user_mode() { "user" } else { "kernel" }
    );
    println!(
        "#PF: error_code({:#06x}) - {}",
        error_code,
        if !e.present {
            "not-present page"
        } else if e.rsvd {
            "reserved bit violation"
        } else if e.pk {
            "protection keys violation"
        } else {
            "permissions violation"
        }
    );
    println!("#PF: decoded: {}", e);
    show_pte(address);
    println!("Oops: {:04x} [#1] NOPTI", error_code);
    show_regs(regs);
    println!("CR2: {:016x}", address);
    die("page fault")
}

/// Linux's `dump_pagetable`: the walk of `address` in the active table.
fn show_pte(address: usize) {
    let mut pa = paging::current_root();
    crate::print!("CR3 {:x}: ", pa);
    for (level, name) in [(4, "PGD"), (3, "PUD"), (2, "PMD"), (1, "PTE")] {
        // SAFETY: reading one entry of a live table.
        let entry = unsafe { table(pa)[paging::index(address, level)] };
        crate::print!("{} {:x} ", name, entry);
        if entry & PTE_P == 0 || entry & paging::PTE_PS != 0 {
            break;
        }
        pa = (entry & PTE_ADDR) as usize;
    }
    println!();
}
