//! `BUG()` and `WARN()` as Linux's arm64 has them: a `brk #0x800` (`BUG_BRK_IMM`) at the
//! site and an entry in `__bug_table` (the site, the file, the line, the flags, as
//! position-relative words); the BRK handler looks the trapping pc up in the table. A WARN
//! reports and resumes after the `brk`; a BUG reports and dies.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::traps::{die, show_regs};
use super::{smp, Frame};
use crate::println;

/// The `brk` immediate of BUG/WARN sites (Linux's `BUG_BRK_IMM`).
pub const BUG_BRK_IMM: u64 = 0x800;
/// `__bug_table` flag: a WARN (resume), not a BUG.
pub const BUGFLAG_WARNING: u16 = 1 << 0;

/// One `__bug_table` entry (Linux's `struct bug_entry` with relative pointers).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BugEntry {
    /// The `brk`, relative to this field.
    bug_addr_disp: i32,
    /// The NUL-terminated file name, relative to this field.
    file_disp: i32,
    /// The line.
    pub line: u16,
    /// `BUGFLAG_*`.
    pub flags: u16,
}

impl BugEntry {
    /// The address of the `brk`.
    pub fn bug_addr(&self) -> usize {
        (&self.bug_addr_disp as *const i32 as usize)
            .wrapping_add_signed(self.bug_addr_disp as isize)
    }

    /// The file name.
    pub fn file(&self) -> &'static str {
        let p = (&self.file_disp as *const i32 as usize)
            .wrapping_add_signed(self.file_disp as isize) as *const u8;
        // SAFETY: the field points at a NUL-terminated string the macro placed in
        // .rodata (the image is mapped for as long as the kernel runs).
        let s = unsafe { core::ffi::CStr::from_ptr(p.cast()) };
        s.to_str().unwrap_or("<file>")
    }
}

/// Emit a BUG/WARN site: the `brk`, its `__bug_table` entry and the file name.
#[macro_export]
macro_rules! __aarch64_bug_site {
    ($flags:expr) => {
        // SAFETY: the `brk` traps to the BUG/WARN handler, which either resumes after it
        // with every register restored (WARN) or stops the kernel (BUG).
        unsafe {
            core::arch::asm!(
                "1: brk #0x800",
                ".pushsection __bug_table, \"aw\"",
                ".balign 4",
                "2: .long 1b - 2b",
                ".long 3f - (2b + 4)",
                ".short {line}",
                ".short {flags}",
                ".popsection",
                ".pushsection .rodata.bug_file, \"a\"",
                concat!("3: .asciz \"", file!(), "\""),
                ".popsection",
                line = const line!(),
                flags = const $flags,
                options(nostack),
            )
        }
    };
}

/// Linux's `BUG()`: report "kernel BUG at file:line!" and die.
#[macro_export]
macro_rules! bug {
    () => {{
        $crate::__aarch64_bug_site!(0);
        unreachable!()
    }};
}

/// Linux's `WARN_ON(cond)`: when `cond` holds, report "WARNING: ... at file:line" and go
/// on; evaluates to `cond`.
#[macro_export]
macro_rules! warn_on {
    ($cond:expr) => {{
        let c: bool = $cond;
        if c {
            $crate::__aarch64_bug_site!($crate::arch::aarch64::bug::BUGFLAG_WARNING);
        }
        c
    }};
}

extern "C" {
    static __start___bug_table: BugEntry;
    static __stop___bug_table: BugEntry;
}

/// The `__bug_table` entries.
pub fn bug_table() -> &'static [BugEntry] {
    let start = core::ptr::addr_of!(__start___bug_table);
    let stop = core::ptr::addr_of!(__stop___bug_table);
    let n = (stop as usize - start as usize) / core::mem::size_of::<BugEntry>();
    // SAFETY: the linker script bounds the section, which holds only `BugEntry`s (12
    // bytes, 4-aligned), read-only after the link.
    unsafe { core::slice::from_raw_parts(start, n) }
}

/// Linux's `find_bug`.
pub fn find_bug(pc: usize) -> Option<&'static BugEntry> {
    bug_table().iter().find(|b| b.bug_addr() == pc)
}

static WARNINGS: AtomicUsize = AtomicUsize::new(0);

/// WARNs reported since boot.
pub fn warnings() -> usize {
    WARNINGS.load(Ordering::Relaxed)
}

/// The BRK handler of BUG/WARN sites (Linux's `bug_brk_handler` / `report_bug`): `false`
/// when the `brk` is not one of ours.
pub fn bug_handler(f: &mut Frame, esr: u64) -> bool {
    if esr & 0xffff != BUG_BRK_IMM {
        return false;
    }
    let pc = f.regs.pc as usize;
    let Some(bug) = find_bug(pc) else {
        return false;
    };
    println!("------------[ cut here ]------------");
    if bug.flags & BUGFLAG_WARNING != 0 {
        println!(
            "WARNING: CPU: {} PID: 0 at {}:{} {:#x}",
            smp::cpu_id(),
            bug.file(),
            bug.line,
            pc
        );
        show_regs(f);
        println!("---[ end trace 0000000000000000 ]---");
        WARNINGS.fetch_add(1, Ordering::Relaxed);
        f.regs.pc += 4;
        return true;
    }
    println!("kernel BUG at {}:{}!", bug.file(), bug.line);
    die("Oops - BUG", f, esr)
}
