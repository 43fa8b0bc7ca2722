//! The scenario list: the common scenarios, then [`Arch::scenarios`].
//!
//! Each scenario prints exactly one `RESULT` line (see [`crate::report`]). Scenarios marked
//! `dedicated` end the boot on purpose (the oops path); they run only when the command line
//! names them (`scenario=NAME`), which is how the harness boots them one at a time.

mod smp;

pub use smp::hold_in_fixup;
pub(crate) use smp::load_held_in_fixup;

use core::fmt::Write;

use crate::arch::{user_op, Arch, Current};
use crate::mm::{self, Mm, PAGE_SIZE};
use crate::report::{self, Detail};
use crate::signal::{SigInfo, SEGV_ACCERR, SEGV_MAPERR, SIGSEGV};
use crate::task::{self, Exit, EFAULT};
use crate::uaccess::{self, copy_from_kernel_nofault, get_user, put_user, Efault, UserPtr};

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
    Scenario::new("nofault_null", nofault_null),
    Scenario::new("nofault_0x880", nofault_0x880),
    Scenario::new("copy_from_user_partial", copy_from_user_partial),
    Scenario::new("get_user_kernel_address", get_user_kernel_address),
    Scenario::new("put_user_kernel_address", put_user_kernel_address),
    Scenario::new("user_syscall_write", user_syscall_write),
    Scenario::new("user_exec_data", user_exec_data),
    Scenario::new("user_demand_zero", user_demand_zero),
    Scenario::new("user_stack_growth", user_stack_growth),
    Scenario::new("user_stack_limit", user_stack_limit),
    Scenario::new("user_write_readonly", user_write_readonly),
    Scenario::new("user_outside_vmas", user_outside_vmas),
    Scenario::new("user_kernel_address", user_kernel_address),
    Scenario::new("smp_fixups", smp::smp_fixups),
];

/// Run the scenarios the command line asks for; returns (run, failed). `noscenarios` runs
/// none (the baseline of the boot-time bench).
pub fn run(cmdline: &str) -> (usize, usize) {
    if cmdline.split_whitespace().any(|w| w == "noscenarios") {
        return (0, 0);
    }
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

/// Describe how a task ended: `exited CODE` or `killed by SIGNAME (CODENAME) signal N ...`.
pub fn describe(exit: Exit, d: &mut Detail) {
    let _ = match exit {
        Exit::Exited(code) => write!(d, "exited {:#x}", code),
        Exit::Killed(i) => write!(d, "killed by {}", i),
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

// ---------------------------------------------------------------------------------------
// Kernel faults fixed through the table (seed 001).

fn faults() -> usize {
    Current::faults_taken().unwrap_or(0)
}

/// A debugger-style probe of `addr` (Linux's `copy_from_kernel_nofault`, seed 001), an
/// address in the user range: the probe returns an error and the kernel goes on. Exactly as
/// many faults as the arch's rule says ([`Arch::NOFAULT_REFUSES_USER`]): none where the
/// address is refused before any access, one (fixed through the table) where it is read.
fn nofault_probe(d: &mut Detail, addr: usize) -> bool {
    let mut buf = [0u8; 8];
    let before = faults();
    // SAFETY: a read of unmapped memory has no side effects and races with nothing.
    let r = unsafe { copy_from_kernel_nofault(&mut buf, addr as *const u8) };
    let taken = faults() - before;
    let counted = Current::faults_taken().is_some();
    let (want, how) = if Current::NOFAULT_REFUSES_USER {
        (0, "refused before any access")
    } else {
        (1, "fixed through the table")
    };
    verdict(
        d,
        r == Err(Efault) && counted && taken == want,
        format_args!(
            "copy_from_kernel_nofault({:#x}) = {:?} after {} fault(s), {} expected ({})",
            addr, r, taken, want, how
        ),
    )
}

/// `copy_from_kernel_nofault(NULL)` returns an error.
fn nofault_null(d: &mut Detail) -> bool {
    nofault_probe(d, 0)
}

/// `copy_from_kernel_nofault(0x880)`, the seed's address, returns an error.
fn nofault_0x880(d: &mut Detail) -> bool {
    nofault_probe(d, 0x880)
}

/// `copy_from_user` of a range that runs off the end of a mapped page into an unmapped one
/// returns the exact number of bytes not copied, for several split points.
fn copy_from_user_partial(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let l = Current::user_layout();
    // The data VMA's last page is served on demand; the page after it is in no VMA.
    let end = l.data + l.data_len;
    let mut pattern = [0u8; 256];
    for (i, b) in pattern.iter_mut().enumerate() {
        *b = i as u8 ^ 0xa5;
    }
    let ok = task::with_mm(&mut mm, || {
        if uaccess::copy_to_user(end - pattern.len(), &pattern) != 0 {
            let _ = write!(d, "copy_to_user of the pattern failed; ");
            return false;
        }
        let mut all = true;
        for inside in [1usize, 7, 100, 255] {
            let mut buf = [0xffu8; 256];
            let src = end - inside;
            let left = uaccess::copy_from_user(&mut buf, src);
            let good = left == buf.len() - inside
                && buf[..inside] == pattern[pattern.len() - inside..]
                && buf[inside..].iter().all(|&b| b == 0);
            let _ = write!(d, "{}->{}{} ", inside, left, if good { "" } else { "!" });
            all &= good;
        }
        all
    });
    verdict(
        d,
        ok,
        format_args!("(bytes in the mapped page -> bytes not copied of 256)"),
    )
}

/// A value the user-pointer scenarios aim at: kernel memory.
static KERNEL_WORD: core::sync::atomic::AtomicU64 =
    core::sync::atomic::AtomicU64::new(0x1122_3344_5566_7788);

/// `get_user` on a (mapped, readable) kernel address is refused by the range check before
/// any access: no fault is taken, and nothing is read.
fn get_user_kernel_address(d: &mut Detail) -> bool {
    let addr = &KERNEL_WORD as *const _ as usize;
    let before = faults();
    let r = get_user(UserPtr::<u64>::new(addr));
    let taken = faults() - before;
    verdict(
        d,
        r == Err(Efault) && taken == 0 && !uaccess::access_ok(UserPtr::<u64>::new(addr), 8),
        format_args!(
            "get_user({:#x}) = {:?}, {} faults taken, access_ok = false",
            addr, r, taken
        ),
    )
}

/// `put_user` on a kernel address is refused too, and the kernel word is unchanged.
fn put_user_kernel_address(d: &mut Detail) -> bool {
    let addr = &KERNEL_WORD as *const _ as usize;
    let before = faults();
    let r = put_user(0xdead_u64, UserPtr::new(addr));
    let taken = faults() - before;
    let now = KERNEL_WORD.load(core::sync::atomic::Ordering::Relaxed);
    verdict(
        d,
        r == Err(Efault) && taken == 0 && now == 0x1122_3344_5566_7788,
        format_args!(
            "put_user(0xdead, {:#x}) = {:?}, {} faults, word still {:#x}",
            addr, r, taken, now
        ),
    )
}

/// A system call from ring 3 with a user buffer (copied with `copy_from_user`) and with a
/// kernel pointer (refused: -EFAULT).
fn user_syscall_write(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let l = Current::user_layout();
    let msg = b"hello from user mode";
    let buf = l.data + 64;
    let staged = task::with_mm(&mut mm, || uaccess::copy_to_user(buf, msg)) == 0;
    let good = task::run(&mut mm, user_op::SYS_WRITE, buf, msg.len());
    let kernel = &KERNEL_WORD as *const _ as usize;
    let bad = task::run(&mut mm, user_op::SYS_WRITE, kernel, 8);
    let _ = write!(d, "write(user buf) ");
    describe(good, d);
    let _ = write!(d, ", write(kernel ptr) ");
    describe(bad, d);
    verdict(
        d,
        staged && good == Exit::Exited(msg.len()) && bad == Exit::Exited(EFAULT as usize),
        format_args!(""),
    )
}

/// An instruction fetch from the (non-executable) data VMA: SIGSEGV with SEGV_ACCERR.
fn user_exec_data(d: &mut Detail) -> bool {
    let Some(mut mm) = new_mm(d) else {
        return false;
    };
    let l = Current::user_layout();
    let exit = task::run(&mut mm, user_op::EXEC, l.data, 0);
    describe(exit, d);
    let want = SigInfo::new(SIGSEGV, SEGV_ACCERR, l.data);
    verdict(d, exit == Exit::Killed(want), format_args!(""))
}
