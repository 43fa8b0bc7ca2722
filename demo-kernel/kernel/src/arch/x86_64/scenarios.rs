//! The scenarios only x86_64 has: the idtentry frame, #DE/#UD/#GP through the table, the
//! unexpected vectors, vmalloc_fault, SMAP/SMEP, and the dedicated oops boots.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use extable_runtime::{ExRegs, ExceptionTableEntry, Trap};

use super::fault::{PAGE_FAULTS, SMAP_VIOLATIONS, VMALLOC_FAULTS, VMALLOC_FIXED};
use super::paging::{self, VMALLOC_START};
use super::traps::{EXCEPTIONS, LAST_UNEXPECTED, UNEXPECTED};
use super::{bug, cpu};
use crate::arch::{user_op, Arch, Current};
use crate::println;
use crate::report::Detail;
use crate::scenarios::{verdict, Scenario};
use crate::signal::{SigInfo, SIGSEGV, SI_KERNEL};
use crate::task::{self, Exit};
use crate::uaccess::{self, copy_from_kernel_nofault, Efault};

/// x86_64's scenarios, run after the common ones.
pub static SCENARIOS: &[Scenario] = &[
    Scenario::new("idtentry_pt_regs", idtentry_pt_regs),
    Scenario::new("divide_error_fixup", divide_error_fixup),
    Scenario::new("gp_noncanonical_uaccess", gp_noncanonical_uaccess),
    Scenario::new("warn_ud2", warn_ud2),
    Scenario::new("unexpected_vectors", unexpected_vectors),
    Scenario::new("user_noncanonical", user_noncanonical),
    Scenario::new("vmalloc_fault", vmalloc_fault),
    Scenario::new("vmalloc_fault_miss", vmalloc_fault_miss),
    Scenario::new("smap_uaccess", smap_uaccess),
    Scenario::new("smap_direct_read", smap_direct_read),
    Scenario::dedicated("oops_null", oops_null),
    Scenario::dedicated("oops_vmalloc", oops_vmalloc),
    Scenario::dedicated("oops_smap", oops_smap),
    Scenario::dedicated("oops_smep", oops_smep),
    Scenario::dedicated("double_fault", double_fault),
    Scenario::dedicated("bug_ud2", bug_ud2),
    Scenario::dedicated("triple_fault", triple_fault),
    Scenario::dedicated("hang", hang),
];

fn page_faults() -> usize {
    PAGE_FAULTS.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------
// The entry frame.

/// r12..r15 as the handler saw them in the saved pt_regs.
static SEEN: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// A handler that records what the stub saved, rewrites rsi in the frame, and resumes at
/// the fixup: after `iretq` the interrupted code must see the new rsi.
fn probe_regs(entry: &ExceptionTableEntry, regs: &mut dyn ExRegs, trap: &Trap) -> bool {
    for (i, seen) in SEEN.iter().enumerate() {
        seen.store(
            regs.reg(12 + i as u8).unwrap_or(0) as u64,
            Ordering::Relaxed,
        );
    }
    regs.set_reg(6, 0x5eed);
    extable_runtime::handlers::default(entry, regs, trap)
}

/// The stub saves the whole frame as a pt_regs, the handler reads and rewrites it, the
/// restore path loads the rewritten registers.
fn idtentry_pt_regs(d: &mut Detail) -> bool {
    let rsi: u64;
    // SAFETY: the NULL load faults; the entry's handler resumes at label 3.
    unsafe {
        extable_runtime::asm!(
            "xor esi, esi",
            "[ex => 3f] mov al, byte ptr [0]",
            "3:",
            in("r12") 0x1212u64,
            in("r13") 0x1313u64,
            in("r14") 0x1414u64,
            in("r15") 0x1515u64,
            out("rsi") rsi,
            out("rax") _,
            options(nostack),
            handler = probe_regs,
        );
    }
    let seen: [u64; 4] = core::array::from_fn(|i| SEEN[i].load(Ordering::Relaxed));
    verdict(
        d,
        seen == [0x1212, 0x1313, 0x1414, 0x1515] && rsi == 0x5eed,
        format_args!(
            "saved r12..r15 = {:x?}; rsi after iretq = {:#x} (handler wrote 0x5eed)",
            seen, rsi
        ),
    )
}

/// #DE in the kernel, fixed through the table by the `fault` handler (trap number in rax).
fn divide_error_fixup(d: &mut Detail) -> bool {
    let (faulted, rax): (u64, u64);
    let before = EXCEPTIONS[0].load(Ordering::Relaxed);
    // SAFETY: the division by zero traps; the entry resumes at label 3 with rax = 0 (#DE).
    unsafe {
        extable_runtime::asm!(
            "mov ecx, 1",
            "xor edx, edx",
            "[ex => 3f] div {zero}",
            "xor ecx, ecx",
            "3:",
            zero = in(reg) 0u64,
            inout("rax") 100u64 => rax,
            out("rdx") _,
            out("rcx") faulted,
            handler = fault,
        );
    }
    let taken = EXCEPTIONS[0].load(Ordering::Relaxed) - before;
    verdict(
        d,
        faulted == 1 && rax == 0 && taken == 1,
        format_args!(
            "#DE taken {} time(s), resumed at the fixup with rax = trap {}",
            taken, rax
        ),
    )
}

/// An unchecked user load (Linux's `__get_user`) of a non-canonical address: #GP, fixed by
/// the uaccess handler, which warns.
fn gp_noncanonical_uaccess(d: &mut Detail) -> bool {
    let addr: u64 = 0x8000_0000_0000_1000;
    let warnings = extable_runtime::report::warning_count();
    let before = EXCEPTIONS[13].load(Ordering::Relaxed);
    let value: u64;
    // SAFETY: the load of a non-canonical address raises #GP; the entry resumes after the
    // block. STAC/CLAC bracket it as a user access.
    let r = unsafe {
        extable_runtime::asm!(
            "[ex] mov {v}, qword ptr [{p}]",
            p = in(reg) addr,
            v = out(reg) value,
            options(nostack),
            handler = uaccess,
        )
    };
    let taken = EXCEPTIONS[13].load(Ordering::Relaxed) - before;
    let warned = extable_runtime::report::warning_count() - warnings;
    let _ = value;
    verdict(
        d,
        r.is_err() && taken == 1 && warned == 1,
        format_args!(
            "load of {:#x}: {:?}; #GP taken {}, warnings {}",
            addr,
            r.map_err(|_| Efault),
            taken,
            warned
        ),
    )
}

/// `ud2` used as WARN: found in `__bug_table`, reported, execution resumes after it.
fn warn_ud2(d: &mut Detail) -> bool {
    let before = bug::WARNINGS.load(Ordering::Relaxed);
    crate::warn_ud2!();
    let after = bug::WARNINGS.load(Ordering::Relaxed);
    verdict(
        d,
        after == before + 1,
        format_args!(
            "WARN reported {} time(s) and execution went on",
            after - before
        ),
    )
}

/// `int3` and `int 0x41`: vectors without a handler of their own report themselves.
fn unexpected_vectors(d: &mut Detail) -> bool {
    let before = UNEXPECTED.load(Ordering::Relaxed);
    // SAFETY: #BP is a trap: the report returns after the int3.
    unsafe { core::arch::asm!("int3", options(nomem, nostack)) };
    let bp = LAST_UNEXPECTED.load(Ordering::Relaxed);
    // SAFETY: a software interrupt to an unused vector; the spurious handler returns.
    unsafe { core::arch::asm!("int 0x41", options(nomem, nostack)) };
    let ext = LAST_UNEXPECTED.load(Ordering::Relaxed);
    let n = UNEXPECTED.load(Ordering::Relaxed) - before;
    verdict(
        d,
        n == 2 && bp == 3 && ext == 0x41,
        format_args!("{} reported: vector {} then vector {:#x}", n, bp, ext),
    )
}

/// A user load of a non-canonical address: #GP in user mode, SIGSEGV (SI_KERNEL).
fn user_noncanonical(d: &mut Detail) -> bool {
    let Some(mut mm) = task::new_mm() else {
        return verdict(d, false, format_args!("no address space"));
    };
    let exit = task::run(&mut mm, user_op::READ, 0x8000_0000_0000_0000, 0);
    verdict(
        d,
        exit == Exit::Killed(SigInfo::new(SIGSEGV, SI_KERNEL, 0)),
        format_args!("{:?}", exit),
    )
}

// ---------------------------------------------------------------------------------------
// vmalloc_fault (seed 002).

/// Read a u64 at `addr` with `copy_from_kernel_nofault`.
fn probe_u64(addr: usize) -> Result<u64, Efault> {
    let mut buf = [0u8; 8];
    // SAFETY: kernel memory without side effects; a missing page is fixed by the table.
    unsafe { copy_from_kernel_nofault(&mut buf, addr as *const u8) }?;
    Ok(u64::from_le_bytes(buf))
}

/// Read a u64 at `addr` with a table-covered load outside any user-access bracket (no STAC):
/// with SMAP on, a user page faults. (`copy_from_kernel_nofault` refuses user addresses
/// before reading, so it cannot show this.)
fn direct_read_u64(addr: usize) -> Result<u64, Efault> {
    let value: u64;
    // SAFETY: the load is marked; a fault resumes after the block with an error.
    unsafe {
        extable_runtime::asm!(
            "[ex] mov {v}, qword ptr [{p}]",
            p = in(reg) addr,
            v = out(reg) value,
            options(nostack),
        )
    }?;
    Ok(value)
}

/// A vmalloc area mapped only in the reference table; a process table created before it
/// faults on it in kernel mode; vmalloc_fault copies the top-level entry and the access is
/// retried; the second access does not fault.
fn vmalloc_fault(d: &mut Detail) -> bool {
    let Some(mut mm) = task::new_mm() else {
        return verdict(d, false, format_args!("no address space"));
    };
    let Some((va, pa)) = paging::vmalloc(1) else {
        return verdict(d, false, format_args!("vmalloc failed"));
    };
    let pattern = 0x7661_6c6c_6f63_2121_u64;
    // SAFETY: the frame is ours, fresh from vmalloc, written through the direct map.
    unsafe { (paging::va(pa) as *mut u64).write(pattern) };
    let (fixed0, faults0) = (VMALLOC_FIXED.load(Ordering::Relaxed), page_faults());
    let (first, f1, second, f2) = task::with_mm(&mut mm, || {
        let first = probe_u64(va);
        let f1 = page_faults() - faults0;
        let second = probe_u64(va + 8);
        let f2 = page_faults() - faults0 - f1;
        (first, f1, second, f2)
    });
    let fixed = VMALLOC_FIXED.load(Ordering::Relaxed) - fixed0;
    verdict(
        d,
        first == Ok(pattern) && second == Ok(0) && f1 == 1 && f2 == 0 && fixed == 1,
        format_args!(
            "vmalloc {:#x} in the process table: 1st read {:x?} with {} fault(s), {} top-level copy; 2nd read {:x?} with {} fault(s)",
            va, first, f1, fixed, second, f2
        ),
    )
}

/// An address in the vmalloc area that the reference table lacks too: vmalloc_fault
/// declines, the fault goes on to the table fixup of the probe (no fixup would mean the
/// oops, as `oops_vmalloc` shows).
fn vmalloc_fault_miss(d: &mut Detail) -> bool {
    let Some(mut mm) = task::new_mm() else {
        return verdict(d, false, format_args!("no address space"));
    };
    let addr = VMALLOC_START + (1 << 39); // a top-level slot nothing maps
    let (seen0, fixed0) = (
        VMALLOC_FAULTS.load(Ordering::Relaxed),
        VMALLOC_FIXED.load(Ordering::Relaxed),
    );
    let r = task::with_mm(&mut mm, || probe_u64(addr));
    let seen = VMALLOC_FAULTS.load(Ordering::Relaxed) - seen0;
    let fixed = VMALLOC_FIXED.load(Ordering::Relaxed) - fixed0;
    verdict(
        d,
        r == Err(Efault) && seen >= 1 && fixed == 0,
        format_args!(
            "read {:#x}: {:?}; vmalloc_fault saw {} fault(s), copied nothing",
            addr, r, seen
        ),
    )
}

// ---------------------------------------------------------------------------------------
// SMAP / SMEP.

fn smap_required(d: &mut Detail) -> bool {
    if !cpu::smap_on() {
        let _ = write!(d, "SMAP not available (run with -cpu max)");
        return false;
    }
    true
}

/// With SMAP on, the uaccess primitives (STAC/CLAC) reach user memory.
fn smap_uaccess(d: &mut Detail) -> bool {
    if !smap_required(d) {
        return false;
    }
    let Some(mut mm) = task::new_mm() else {
        return verdict(d, false, format_args!("no address space"));
    };
    let l = Current::user_layout();
    let violations = SMAP_VIOLATIONS.load(Ordering::Relaxed);
    let (put, got) = task::with_mm(&mut mm, || {
        let put = uaccess::copy_to_user(l.data, b"smap");
        let mut buf = [0u8; 4];
        let left = uaccess::copy_from_user(&mut buf, l.data);
        (put, (left, buf))
    });
    let v = SMAP_VIOLATIONS.load(Ordering::Relaxed) - violations;
    verdict(
        d,
        put == 0 && got == (0, *b"smap") && v == 0,
        format_args!(
            "copy_to_user left {}, copy_from_user left {} read {:?}, SMAP violations {}",
            put,
            got.0,
            core::str::from_utf8(&got.1).unwrap_or("?"),
            v
        ),
    )
}

/// With SMAP on, a kernel read of a present user page outside STAC/CLAC faults and is
/// reported (a nofault probe here, so the table fixes it; `oops_smap` has no entry).
fn smap_direct_read(d: &mut Detail) -> bool {
    if !smap_required(d) {
        return false;
    }
    let Some(mut mm) = task::new_mm() else {
        return verdict(d, false, format_args!("no address space"));
    };
    let l = Current::user_layout();
    let violations = SMAP_VIOLATIONS.load(Ordering::Relaxed);
    let (staged, direct) = task::with_mm(&mut mm, || {
        let staged = uaccess::copy_to_user(l.data, &7u64.to_le_bytes());
        (staged, direct_read_u64(l.data))
    });
    let v = SMAP_VIOLATIONS.load(Ordering::Relaxed) - violations;
    let ec = super::fault::LAST_FAULT[1].load(Ordering::Relaxed);
    verdict(
        d,
        staged == 0 && direct == Err(Efault) && v >= 1 && ec == 1,
        format_args!(
            "direct read of present user page {:#x}: {:?}, SMAP violations reported {}, error code {:#x}",
            l.data, direct, v, ec
        ),
    )
}

// ---------------------------------------------------------------------------------------
// Dedicated boots: each ends in the oops path (or worse, on purpose).

/// A load no table entry covers.
fn raw_read(addr: usize) -> u8 {
    let v: u8;
    // SAFETY: deliberately not: the load faults and nothing fixes it; the oops path stops
    // the machine before anything can use the result.
    unsafe {
        core::arch::asm!("mov {v}, byte ptr [{p}]", p = in(reg) addr, v = out(reg_byte) v, options(nostack))
    };
    v
}

/// An unhandled kernel NULL dereference: the oops.
fn oops_null(d: &mut Detail) -> bool {
    let v = raw_read(0);
    verdict(d, false, format_args!("read NULL = {}", v))
}

/// A kernel read of a vmalloc address the reference table lacks: vmalloc_fault declines,
/// no fixup: the oops.
fn oops_vmalloc(d: &mut Detail) -> bool {
    let Some(mut mm) = task::new_mm() else {
        return false;
    };
    let v = task::with_mm(&mut mm, || raw_read(VMALLOC_START + (1 << 39)));
    verdict(d, false, format_args!("read = {}", v))
}

/// A direct kernel read of a present user page with SMAP on and no fixup: the oops.
fn oops_smap(d: &mut Detail) -> bool {
    if !smap_required(d) {
        return false;
    }
    let Some(mut mm) = task::new_mm() else {
        return false;
    };
    let l = Current::user_layout();
    let v = task::with_mm(&mut mm, || {
        let _ = uaccess::copy_to_user(l.data, &[1]);
        raw_read(l.data)
    });
    verdict(d, false, format_args!("read = {}", v))
}

/// The kernel jumps into a user page with SMEP on: the oops.
fn oops_smep(d: &mut Detail) -> bool {
    if !cpu::smep_on() {
        return verdict(d, false, format_args!("SMEP not available"));
    }
    let Some(mut mm) = task::new_mm() else {
        return false;
    };
    let l = Current::user_layout();
    task::with_mm(&mut mm, || {
        // SAFETY: deliberately not: the fetch from a user page faults under SMEP and the
        // oops path stops the machine.
        unsafe { core::arch::asm!("call {}", in(reg) l.text, clobber_abi("C")) };
    });
    verdict(d, false, format_args!("returned from user code"))
}

/// A kernel stack pointer into unmapped memory: the push faults, delivering the #PF faults
/// again, the CPU raises #DF, which runs on its IST stack and dies.
fn double_fault(d: &mut Detail) -> bool {
    println!("double fault: pointing rsp at unmapped memory and pushing");
    // SAFETY: deliberately not: the machine stops in the #DF handler.
    unsafe {
        core::arch::asm!(
            "mov rsp, {bad}",
            "push rax",
            bad = in(reg) 0xffff_a000_0000_0000_u64,
        )
    };
    verdict(d, false, format_args!("survived"))
}

/// `ud2` used as BUG: reported from `__bug_table`, then the oops.
fn bug_ud2(d: &mut Detail) -> bool {
    // SAFETY: the ud2 traps; its BUG entry sends it to the oops path.
    unsafe {
        core::arch::asm!(
            "2: ud2",
            ".pushsection __bug_table, \"aw\"",
            ".balign 4",
            "3: .long 2b - 3b",
            ".short {line}",
            ".short 0",
            ".popsection",
            line = const line!(),
            options(nostack)
        )
    };
    verdict(d, false, format_args!("returned from BUG"))
}

/// An empty IDT and a trap: #GP, #DF and a triple fault; QEMU (`-no-reboot`) exits 0,
/// which the harness must never read as success.
fn triple_fault(d: &mut Detail) -> bool {
    println!("triple fault: loading an empty IDT and trapping");
    let empty = [0u8; 10];
    // SAFETY: deliberately not: the machine resets.
    unsafe { core::arch::asm!("lidt [{}]", "int3", in(reg) &empty) };
    verdict(d, false, format_args!("survived"))
}

/// Spin forever with interrupts masked: the harness's timeout must kill the emulator.
fn hang(_d: &mut Detail) -> bool {
    println!("hang: spinning with interrupts masked");
    loop {
        // SAFETY: halting with interrupts masked stops this CPU for good.
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

crate::scenarios::load_held_in_fixup!("[ex] mov {v}, qword ptr [{a}]");
