//! The `Trap` the hosted backend hands to handlers, field by field, on each architecture,
//! against what `Trap`'s documentation promises: `nr` the signal, `kind` from `si_code`,
//! `address` the fault address, `error_code` the architecture's word (x86_64: the page-fault
//! error code from `REG_ERR`; ARM: the signal frame's `error_code`, the FSR; AArch64:
//! `si_code`).
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "arm", target_arch = "aarch64")
))]

use extable_runtime::{extable, Fault, FaultKind, Trap};

mod common;
use common::{map, protect, setup, PAGE};

/// Load a word from `addr`; a fault returns the trap the default handler recorded.
#[extable]
fn load(addr: usize) -> Result<usize, Fault> {
    let value: usize;
    // SAFETY: the only access is the marked load; a fault there returns `Err`.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        core::arch::asm!("[ex] mov {v}, qword ptr [{a}]", a = in(reg) addr, v = out(reg) value);
        #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
        core::arch::asm!("[ex] ldr {v}, [{a}]", a = in(reg) addr, v = out(reg) value);
    }
    Ok(value)
}

/// The trap of a load from `addr`, which must fault.
fn trap_of_load(addr: usize) -> Trap {
    setup();
    let fault = load(addr).expect_err("the load faults");
    *fault.trap().expect("the default handler records the trap")
}

/// An address in the first page, which Linux never maps (`vm.mmap_min_addr`); a page
/// unmapped by the test could be mapped again by a test running in parallel.
const UNMAPPED: usize = 0x18;

/// Whether `error_code` is what the backend documents for a user-mode read of an address
/// with no mapping.
fn is_unmapped_read_error_code(error_code: u64) -> bool {
    if cfg!(target_arch = "x86_64") {
        // #PF error code: not present (P=0), read (W=0), user mode (U=4).
        error_code == 4
    } else if cfg!(target_arch = "aarch64") {
        // si_code: SEGV_MAPERR.
        error_code == 1
    } else {
        // ARM: the FSR of the abort: a translation fault (fault status 0x4-0x7 in both the
        // short-descriptor and the LPAE format) on a read (WnR, bit 11, clear). qemu-user
        // leaves the word 0.
        error_code == 0 || (matches!(error_code & 0xf, 0x4..=0x7) && error_code & 1 << 11 == 0)
    }
}

#[test]
fn unmapped_read_fields() {
    let addr = UNMAPPED;
    let trap = trap_of_load(addr);
    assert_eq!(trap.nr, libc::SIGSEGV as u32, "{trap:?}");
    assert_eq!(trap.kind, FaultKind::NotMapped, "{trap:?}");
    assert_eq!(trap.address, Some(addr), "{trap:?}");
    assert!(is_unmapped_read_error_code(trap.error_code), "{trap:?}");
}

#[test]
fn protected_read_fields() {
    let page = map(PAGE);
    protect(page, PAGE, libc::PROT_NONE);
    let trap = trap_of_load(page + 16);
    assert_eq!(trap.nr, libc::SIGSEGV as u32, "{trap:?}");
    assert_eq!(trap.kind, FaultKind::Permission, "{trap:?}");
    assert_eq!(trap.address, Some(page + 16), "{trap:?}");
    if cfg!(target_arch = "aarch64") {
        assert_eq!(trap.error_code, 2, "si_code SEGV_ACCERR: {trap:?}");
    }
}
