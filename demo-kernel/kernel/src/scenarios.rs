//! The scenario list: the common scenarios, then [`Arch::scenarios`].
//!
//! Each scenario prints exactly one `RESULT` line (see [`crate::report`]). Scenarios marked
//! `dedicated` end the boot on purpose (the oops path); they run only when the command line
//! names them (`scenario=NAME`), which is how the harness boots them one at a time.

use core::fmt::Write;

use crate::arch::{user_op, Arch, Current};
use crate::mm::{self, Mm, PAGE_SIZE};
use crate::report::{self, Detail};
use crate::signal::{SigInfo, SEGV_ACCERR, SEGV_MAPERR, SIGSEGV};
use crate::task::{self, Exit};

/// One scenario: a name, a function that runs it and fills in its detail, and whether it
/// needs a boot of its own.
pub struct Scenario {
    /// The name in its `RESULT` line.
    pub name: &'static str,
    /// Runs the scenario; `true` for PASS.
    pub run: fn(&mut Detail) -> bool,
    /// Ends the boot (an oops): runs only when named on the command line.
    pub dedicated: bool,
}

impl Scenario {
    /// A scenario that runs in the main boot.
    pub const fn new(name: &'static str, run: fn(&mut Detail) -> bool) -> Self {
        Scenario {
            name,
            run,
            dedicated: false,
        }
    }

    /// A scenario that ends its boot and so runs alone.
    pub const fn dedicated(name: &'static str, run: fn(&mut Detail) -> bool) -> Self {
        Scenario {
            name,
            run,
            dedicated: true,
        }
    }
}

/// The scenarios every architecture runs.
static COMMON: &[Scenario] = &[
    Scenario::new("extable_table", extable_table),
    Scenario::new("user_demand_zero", user_demand_zero),
    Scenario::new("user_stack_growth", user_stack_growth),
    Scenario::new("user_stack_limit", user_stack_limit),
    Scenario::new("user_write_readonly", user_write_readonly),
    Scenario::new("user_outside_vmas", user_outside_vmas),
    Scenario::new("user_kernel_address", user_kernel_address),
];

/// Run the scenarios the command line asks for; returns (run, failed).
pub fn run(cmdline: &str) -> (usize, usize) {
    let only = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("scenario="));
    let all = COMMON.iter().chain(Current::scenarios().iter());
    let (mut total, mut failed) = (0, 0);
    for s in all {
        let selected = match only {
            Some(name) => s.name == name,
            None => !s.dedicated,
        };
        if !selected {
            continue;
        }
        total += 1;
        if !run_one(s) {
            failed += 1;
        }
    }
    if let Some(name) = only {
        if total == 0 {
            report::result(name, false, "no such scenario");
            return (1, 1);
        }
    }
    (total, failed)
}

fn run_one(s: &Scenario) -> bool {
    report::set_current(s.name);
    let mut detail = Detail::new();
    let pass = (s.run)(&mut detail);
    if s.dedicated {
        // Reaching here means the oops path did not run.
        let _ = write!(detail, " (returned instead of oopsing)");
        report::result(s.name, false, detail.as_str());
        return false;
    }
    report::result(s.name, pass, detail.as_str());
    pass
}

/// Write `args` into the detail and return `pass`.
pub fn verdict(d: &mut Detail, pass: bool, args: core::fmt::Arguments<'_>) -> bool {
    let _ = d.write_fmt(args);
    pass
}

// ---------------------------------------------------------------------------------------
// The table.

/// The main table was checked at boot: in order, no conflicts, the marker truthful.
fn extable_table(d: &mut Detail) -> bool {
    // SAFETY: the kernel image, `__ex_table` included, is mapped writable, and nothing can
    // fault concurrently (one CPU, interrupts masked).
    let r = unsafe { extable_runtime::table::init_main_table_writable() };
    let ok = r.entries > 0
        && r.order != extable_runtime::table::Order::Unsorted
        && r.conflicts == 0
        && !r.marker_lied;
    verdict(
        d,
        ok,
        format_args!(
            "entries={} order={:?} duplicates={} conflicts={} marker_sorted={}",
            r.entries,
            r.order,
            r.duplicates,
            r.conflicts,
            extable_runtime::table::main_marked_sorted()
        ),
    )
}

// ---------------------------------------------------------------------------------------
// The user task.

fn new_mm(d: &mut Detail) -> Option<Mm> {
    let mm = task::new_mm();
    if mm.is_none() {
        let _ = write!(d, "cannot build the user address space");
    }
    mm
}

fn describe(exit: Exit, d: &mut Detail) {
    let _ = match exit {
        Exit::Exited(code) => write!(d, "exited {:#x}", code),
        Exit::Killed(i) => write!(
            d,
            "killed by signal {} code {} addr {:#x}",
            i.signo, i.code, i.addr
        ),
    };
}

/// First touch of a demand-zero page is a minor fault that maps a zeroed page; a later access
/// to the same page does not fault.
fn user_demand_zero(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let l = Current::user_layout();
    let addr = l.data + PAGE_SIZE + 5;
    let first = task::run(&mut mm, user_op::READ, addr, 0);
    let after_read = mm.minor_faults;
    let write = task::run(&mut mm, user_op::WRITE, addr, 0x5a);
    let after_write = mm.minor_faults;
    let again = task::run(&mut mm, user_op::READ, addr, 0);
    let _ = write!(d, "read ");
    describe(first, d);
    let _ = write!(d, ", write ");
    describe(write, d);
    let _ = write!(d, ", reread ");
    describe(again, d);
    verdict(
        d,
        first == Exit::Exited(0)
            && write == Exit::Exited(0x5a)
            && again == Exit::Exited(0x5a)
            && after_read == 1
            && after_write == 1
            && mm.minor_faults == 1,
        format_args!(
            "; minor faults {}/{}/{} (total {})",
            after_read,
            after_write,
            mm.minor_faults,
            mm::minor_faults()
        ),
    )
}

/// A store below the stack VMA, within the limit, grows the VMA and is served.
fn user_stack_growth(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let l = Current::user_layout();
    let depth = l.stack_len + 3 * PAGE_SIZE;
    let exit = task::run(&mut mm, user_op::STACK, depth, 0);
    describe(exit, d);
    let start = mm.find_vma(l.stack_top - 1).and_then(|i| mm.vma(i));
    let grown_to = start.map_or(0, |v| v.start);
    verdict(
        d,
        exit == Exit::Exited(1) && grown_to == mm::page_down(l.stack_top - depth),
        format_args!(
            "; stack VMA now starts at {:#x} ({} bytes), minor faults {}",
            grown_to,
            l.stack_top - grown_to,
            mm.minor_faults
        ),
    )
}

/// A store below the stack limit is not served: SIGSEGV (SEGV_MAPERR).
fn user_stack_limit(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let l = Current::user_layout();
    let depth = l.stack_limit + PAGE_SIZE;
    let exit = task::run(&mut mm, user_op::STACK, depth, 0);
    describe(exit, d);
    let want = SigInfo::new(SIGSEGV, SEGV_MAPERR, l.stack_top - depth);
    verdict(
        d,
        exit == Exit::Killed(want),
        format_args!("; limit {} bytes", l.stack_limit),
    )
}

/// A write to the read-only VMA: SIGSEGV with SEGV_ACCERR.
fn user_write_readonly(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let l = Current::user_layout();
    let exit = task::run(&mut mm, user_op::WRITE, l.rodata + 8, 1);
    describe(exit, d);
    let want = SigInfo::new(SIGSEGV, SEGV_ACCERR, l.rodata + 8);
    verdict(d, exit == Exit::Killed(want), format_args!(""))
}

/// An access outside every VMA: SIGSEGV with SEGV_MAPERR.
fn user_outside_vmas(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let l = Current::user_layout();
    let exit = task::run(&mut mm, user_op::READ, l.unmapped, 0);
    describe(exit, d);
    let want = SigInfo::new(SIGSEGV, SEGV_MAPERR, l.unmapped);
    verdict(d, exit == Exit::Killed(want), format_args!(""))
}

/// A user-mode read of a kernel address: SIGSEGV.
fn user_kernel_address(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let l = Current::user_layout();
    let exit = task::run(&mut mm, user_op::READ, l.kernel_addr, 0);
    describe(exit, d);
    let pass = matches!(exit, Exit::Killed(i) if i.signo == SIGSEGV && i.addr == l.kernel_addr);
    verdict(d, pass, format_args!(""))
}
