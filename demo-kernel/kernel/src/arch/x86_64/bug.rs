//! `ud2` as WARN/BUG, looked up in a second table, `__bug_table` (Linux's `report_bug`).
//!
//! Each entry: the self-relative address of the `ud2`, the source line and flags.

use core::sync::atomic::{AtomicUsize, Ordering};

use extable_runtime::arch::x86_64::PtRegs;

use crate::println;

/// The entry describes a WARN: report and resume after the `ud2`.
pub const BUGFLAG_WARNING: u16 = 1;

/// One `__bug_table` entry.
#[repr(C)]
pub struct BugEntry {
    bug_addr_disp: i32,
    line: u16,
    flags: u16,
}

impl BugEntry {
    fn bug_addr(&self) -> usize {
        (self as *const Self as usize).wrapping_add(self.bug_addr_disp as isize as usize)
    }
}

extern "C" {
    static __start___bug_table: [BugEntry; 0];
    static __stop___bug_table: [BugEntry; 0];
}

/// WARNs reported since boot.
pub static WARNINGS: AtomicUsize = AtomicUsize::new(0);

fn bug_table() -> &'static [BugEntry] {
    let start = core::ptr::addr_of!(__start___bug_table) as usize;
    let stop = core::ptr::addr_of!(__stop___bug_table) as usize;
    let len = (stop - start) / core::mem::size_of::<BugEntry>();
    // SAFETY: the linker collects the entries between the two symbols.
    unsafe { core::slice::from_raw_parts(start as *const BugEntry, len) }
}

fn find_bug(addr: usize) -> Option<&'static BugEntry> {
    bug_table().iter().find(|b| b.bug_addr() == addr)
}

/// Handle a kernel `ud2` that has a `__bug_table` entry: a WARN is reported and execution
/// resumes after the `ud2` (`true`); a BUG is reported and left to the oops path (`false`).
pub fn report_bug(regs: &mut PtRegs) -> bool {
    let Some(bug) = find_bug(regs.rip as usize) else {
        return false;
    };
    if bug.flags & BUGFLAG_WARNING != 0 {
        WARNINGS.fetch_add(1, Ordering::Relaxed);
        println!(
            "WARNING: CPU: 0 at src/arch/x86_64/scenarios.rs:{} rip {:#x}",
            bug.line, regs.rip
        );
        regs.rip += 2;
        return true;
    }
    println!("kernel BUG at src/arch/x86_64/scenarios.rs:{}!", bug.line);
    false
}

/// `WARN_ON(true)`: a `ud2` with a WARNING entry in `__bug_table`.
#[macro_export]
macro_rules! warn_ud2 {
    () => {
        // SAFETY: the ud2 traps to exc_invalid_op, which finds the entry and skips it.
        unsafe {
            core::arch::asm!(
                "2: ud2",
                ".pushsection __bug_table, \"aw\"",
                ".balign 4",
                "3: .long 2b - 3b",
                ".short {line}",
                ".short {flags}",
                ".popsection",
                line = const line!(),
                flags = const $crate::arch::x86_64::bug::BUGFLAG_WARNING,
                options(nostack)
            )
        }
    };
}
