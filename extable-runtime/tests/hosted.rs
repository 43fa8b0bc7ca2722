//! Real faults in Linux user space, recovered through `__ex_table` entries written by hand in
//! `asm!` and the hosted backend's signal handlers.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "arm", target_arch = "aarch64")
))]

use extable_runtime::entry::ExceptionTableEntry;
use extable_runtime::handlers::EFAULT;
use extable_runtime::table::{init_main_table, main_entries, search_exception_tables};
use extable_runtime::{ExRegs, Trap};

mod common;
use common::{in_child, killed_by_sigsegv, map, protect, setup, PAGE};

/// The assembly of one hand-written table entry: `insn` and `fixup` are local labels, the
/// handler is the asm operand `{h}`.
macro_rules! entry {
    ($insn:literal, $fixup:literal) => {
        concat!(
            ".pushsection __ex_table, \"aR\"\n.balign 4\n.long ",
            $insn,
            " - ., ",
            $fixup,
            " - ., {h} - .\n.popsection"
        )
    };
}

/// One page with `prot`, holding `0x5a5a` in its first word.
fn page(prot: libc::c_int) -> *mut u8 {
    let p = map(PAGE);
    // SAFETY: the fresh mapping is read-write and no Rust reference covers it.
    unsafe { (p as *mut usize).write_volatile(0x5a5a) };
    protect(p, PAGE, prot);
    p as *mut u8
}

/// Load a word from `p` with a table entry whose fixup clears `ok`; `$h` is the handler.
/// Returns `(ok, value)`.
macro_rules! probe_load {
    ($p:expr, $h:path) => {{
        let ok: usize;
        let value: usize;
        // SAFETY: the only access that may fault is covered by the entry emitted here; the
        // fixup resumes inside this asm block.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            core::arch::asm!(
                "mov {ok}, 1",
                "mov {v}, 0",
                "2: mov {v}, [{p}]",
                "jmp 3f",
                "4: mov {ok}, 0",
                "3:",
                entry!("2b", "4b"),
                p = in(reg) $p, ok = out(reg) ok, v = out(reg) value, h = sym $h,
            )
        }
        // SAFETY: as above.
        #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
        unsafe {
            core::arch::asm!(
                "mov {ok}, #1",
                "mov {v}, #0",
                "2: ldr {v}, [{p}]",
                "b 3f",
                "4: mov {ok}, #0",
                "3:",
                entry!("2b", "4b"),
                p = in(reg) $p, ok = out(reg) ok, v = out(reg) value, h = sym $h,
            )
        }
        (ok, value)
    }};
}

/// Store `value` to `p` with an entry whose handler leaves its verdict in `ret`
/// (the return register: rax, r0, x0), which starts at 0.
macro_rules! probe_store_ret {
    ($p:expr, $value:expr, $h:path) => {{
        let ret: usize;
        // SAFETY: the store that may fault is covered by the entry; the fixup is the end of
        // the block. The return register starts at 0.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            core::arch::asm!(
                "2: mov [{p}], {v}",
                "3:",
                entry!("2b", "3b"),
                p = in(reg) $p, v = in(reg) $value, inout("rax") 0usize => ret, h = sym $h,
            )
        }
        // SAFETY: as above.
        #[cfg(target_arch = "arm")]
        unsafe {
            core::arch::asm!(
                "2: str {v}, [{p}]",
                "3:",
                entry!("2b", "3b"),
                p = in(reg) $p, v = in(reg) $value, inout("r0") 0usize => ret, h = sym $h,
            )
        }
        // SAFETY: as above.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            core::arch::asm!(
                "2: str {v}, [{p}]",
                "3:",
                entry!("2b", "3b"),
                p = in(reg) $p, v = in(reg) $value, inout("x0") 0usize => ret, h = sym $h,
            )
        }
        ret
    }};
}

#[test]
fn null_read_resumes_at_fixup() {
    setup();
    let (ok, value) = probe_load!(
        std::ptr::null::<usize>(),
        extable_runtime::handlers::default
    );
    assert_eq!((ok, value), (0, 0), "the NULL read must go to the fixup");
}

#[test]
fn read_of_readable_memory_does_not_take_the_fixup() {
    setup();
    let p = page(libc::PROT_READ);
    let (ok, value) = probe_load!(p as *const usize, extable_runtime::handlers::default);
    assert_eq!((ok, value), (1, 0x5a5a));
}

#[test]
fn prot_none_page_read_resumes_at_fixup() {
    setup();
    let p = page(libc::PROT_NONE);
    let (ok, _) = probe_load!(p as *const usize, extable_runtime::handlers::default);
    assert_eq!(ok, 0);
}

#[test]
fn write_to_read_only_page_gets_efault_in_the_chosen_register() {
    setup();
    let p = page(libc::PROT_READ);
    let ret = probe_store_ret!(
        p as *mut usize,
        7usize,
        extable_runtime::handlers::efault::<0, { extable_runtime::NO_REG }>
    );
    assert_eq!(ret as isize, EFAULT);
    // SAFETY: the page is readable; the failed store must not have changed it.
    assert_eq!(
        unsafe { std::ptr::read_volatile(p as *const usize) },
        0x5a5a
    );
}

#[test]
fn fault_handler_puts_the_trap_number_in_the_return_register() {
    setup();
    let p = page(libc::PROT_READ);
    let ret = probe_store_ret!(p as *mut usize, 7usize, extable_runtime::handlers::fault);
    assert_eq!(ret, libc::SIGSEGV as usize);
}

#[test]
fn efault_with_clear_zeroes_the_output_register() {
    setup();
    let err: usize;
    let out: usize;
    // SAFETY: the NULL load is covered by the entry; its fixup ends the block.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        // efault::<2 (rdx), 0 (rax)>: rdx = -EFAULT, rax = 0 (EX_FLAG_CLEAR_AX).
        core::arch::asm!(
            "mov rax, 99",
            "xor edx, edx",
            "2: mov rax, [{p}]",
            "3:",
            entry!("2b", "3b"),
            p = in(reg) 0usize, out("rax") out, out("rdx") err,
            h = sym extable_runtime::handlers::efault::<2, 0>,
        )
    }
    // SAFETY: as above; efault::<1 (r1), 0 (r0)>.
    #[cfg(target_arch = "arm")]
    unsafe {
        core::arch::asm!(
            "2: ldr r0, [{p}]",
            "3:",
            entry!("2b", "3b"),
            p = in(reg) 0usize, inout("r0") 99usize => out, inout("r1") 0usize => err,
            h = sym extable_runtime::handlers::efault::<1, 0>,
        )
    }
    // SAFETY: as above; efault::<1 (x1), 0 (x0)>.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!(
            "2: ldr x0, [{p}]",
            "3:",
            entry!("2b", "3b"),
            p = in(reg) 0usize, inout("x0") 99usize => out, inout("x1") 0usize => err,
            h = sym extable_runtime::handlers::efault::<1, 0>,
        )
    }
    assert_eq!((err as isize, out), (EFAULT, 0));
}

/// A page of a file mapped past the file's end: touching it raises a real SIGBUS.
fn page_past_end_of_file() -> *mut u8 {
    let path = std::env::temp_dir().join(format!("extable-sigbus-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.set_len(4096).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: a shared mapping of two pages of a one-page file; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    std::fs::remove_file(&path).unwrap();
    (p as *mut u8).wrapping_add(4096)
}

#[test]
fn sigbus_is_recovered_too() {
    setup();
    let p = page_past_end_of_file();
    let ret = probe_store_ret!(p as *mut usize, 1usize, extable_runtime::handlers::fault);
    assert_eq!(ret, libc::SIGBUS as usize, "the fault handler saw a SIGBUS");
    let (ok, _) = probe_load!(p as *const usize, extable_runtime::handlers::default);
    assert_eq!(ok, 0);
}

/// A user-defined handler: records the fault address in the return register.
fn record_address(entry: &ExceptionTableEntry, regs: &mut dyn ExRegs, trap: &Trap) -> bool {
    let r = regs.return_reg();
    regs.set_reg(r, trap.address.unwrap_or(usize::MAX));
    regs.set_pc(entry.fixup_addr());
    true
}

#[test]
fn user_handler_sees_the_fault_address() {
    setup();
    let p = page(libc::PROT_NONE);
    let target = p.wrapping_add(24) as *mut usize;
    let ret = probe_store_ret!(target, 1usize, record_address);
    assert_eq!(ret, target as usize);
}

/// A handler that declines: the fault must go on to the default action.
fn decline(_: &ExceptionTableEntry, _: &mut dyn ExRegs, _: &Trap) -> bool {
    false
}

/// The scenarios that must crash run only in a child process.
#[test]
fn child_scenarios() {
    match std::env::var("EXTABLE_CHILD").as_deref() {
        Ok("no-entry") => {
            setup();
            let p = page(libc::PROT_NONE);
            // SAFETY: deliberately faults with no table entry: the process must die.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                core::arch::asm!("mov {0}, [{0}]", inout(reg) p => _)
            };
            // SAFETY: as above.
            #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
            unsafe {
                core::arch::asm!("ldr {0}, [{0}]", inout(reg) p => _)
            };
        }
        Ok("chained") => {
            // A handler installed before ours must still see the faults we cannot fix.
            extern "C" fn earlier(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(42) };
            }
            // SAFETY: a zeroed sigaction with a valid SA_SIGINFO handler.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = earlier as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_SIGINFO;
                assert_eq!(
                    libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()),
                    0
                );
            }
            setup();
            // A fault our table fixes stays ours...
            let (ok, _) = probe_load!(
                std::ptr::null::<usize>(),
                extable_runtime::handlers::default
            );
            assert_eq!(ok, 0);
            // ...and one it does not goes to the earlier handler.
            let _ = probe_load!(std::ptr::null::<usize>(), decline);
        }
        Ok("declined") => {
            setup();
            let _ = probe_load!(std::ptr::null::<usize>(), decline);
        }
        Ok("loop") => {
            setup();
            // An entry whose fixup is its own faulting instruction: a loop the guard breaks.
            // SAFETY: the load faults forever unless the guard stops it (it does: the child
            // dies with SIGSEGV).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                core::arch::asm!(
                    "2: mov {v}, [{p}]",
                    entry!("2b", "2b"),
                    p = in(reg) 0usize, v = out(reg) _, h = sym extable_runtime::handlers::default,
                )
            }
            // SAFETY: as above.
            #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
            unsafe {
                core::arch::asm!(
                    "2: ldr {v}, [{p}]",
                    entry!("2b", "2b"),
                    p = in(reg) 0usize, v = out(reg) _, h = sym extable_runtime::handlers::default,
                )
            }
        }
        _ => {}
    }
}

#[test]
fn a_fault_without_entry_still_crashes() {
    let (status, _) = in_child("child_scenarios", "no-entry");
    assert!(
        killed_by_sigsegv(status),
        "expected death by SIGSEGV, got {status:?}"
    );
}

#[test]
fn an_earlier_handler_gets_the_faults_without_entry() {
    let (status, stderr) = in_child("child_scenarios", "chained");
    assert_eq!(
        status.code(),
        Some(42),
        "the earlier handler ran: {status:?} {stderr}"
    );
}

#[test]
fn a_declining_handler_lets_the_fault_crash() {
    let (status, _) = in_child("child_scenarios", "declined");
    assert!(
        killed_by_sigsegv(status),
        "expected death by SIGSEGV, got {status:?}"
    );
}

#[test]
fn a_fixup_loop_is_detected_and_fails_loudly() {
    let (status, stderr) = in_child("child_scenarios", "loop");
    assert!(
        killed_by_sigsegv(status),
        "expected death by SIGSEGV, got {status:?}"
    );
    assert!(stderr.contains("the fixups loop"), "stderr: {stderr}");
}

#[test]
fn every_entry_of_the_main_table_is_found() {
    let report = init_main_table();
    let entries = main_entries();
    assert!(
        entries.len() >= 8,
        "this binary's own entries are in the main table"
    );
    assert_eq!(report.entries, entries.len());
    for e in entries {
        let found = search_exception_tables(e.insn_addr()).expect("entry found");
        assert_eq!(found, e.targets());
    }
    assert!(search_exception_tables(0x10).is_none());
}
