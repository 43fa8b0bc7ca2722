//! The hosted backend and signals that are not faults, faults inside a handler, and its
//! installation: each scenario that may kill the process runs in a child process.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "arm", target_arch = "aarch64")
))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use extable_runtime::entry::ExceptionTableEntry;
use extable_runtime::hosted;
use extable_runtime::uaccess::{copy_from_user, UserPtr};
use extable_runtime::{ExRegs, Trap};

mod common;
use common::{in_child, killed_by_sigsegv, map, setup};

/// Size of the buffer the copies move: big enough that most signals land inside the copy.
const COPY: usize = 1 << 20;

/// Copy `COPY` bytes of 0x5a from user memory in a loop while another thread sends `SIGSEGV`
/// to this one `sends` times with `pthread_kill`. Exits with 3 if a copy comes back short
/// (a sent signal taken for a fault) or with wrong data; returns after all the sends. With
/// `counted`, each send waits until the counting handler has seen the previous one (standard
/// signals sent while one is pending merge).
fn copy_while_signalled(sends: usize, counted: bool) {
    let src = map(COPY);
    // SAFETY: the fresh mapping is ours and no reference covers it.
    unsafe { std::ptr::write_bytes(src as *mut u8, 0x5a, COPY) };
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..sends {
                std::thread::sleep(std::time::Duration::from_micros(300));
                // SAFETY: `me` is this process's copying thread, alive until `done`.
                unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGSEGV) };
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while counted && COUNTED.load(Ordering::Relaxed) <= i {
                    if std::time::Instant::now() > deadline {
                        eprintln!("the previous handler did not get signal {i}");
                        std::process::exit(6);
                    }
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
            }
            done.store(true, Ordering::Release);
        });
        let mut dst = vec![0u8; COPY];
        while !done.load(Ordering::Acquire) {
            let left = copy_from_user(&mut dst, UserPtr::new(src));
            if left != 0 || dst.iter().any(|&b| b != 0x5a) {
                eprintln!("a sent signal was taken for a fault: {left} bytes left");
                std::process::exit(3);
            }
            dst.fill(0);
        }
    });
}

/// How often the counting handler ran.
static COUNTED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn counting(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    COUNTED.fetch_add(1, Ordering::Relaxed);
}

/// Install `counting` as the `SIGSEGV` handler (before the backend).
fn install_counting_handler() {
    // SAFETY: a zeroed sigaction with a valid SA_SIGINFO handler.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = counting as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO;
        assert_eq!(
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()),
            0
        );
    }
}

/// Set `SIGSEGV` to its default action (the Rust runtime installs a handler of its own).
fn default_action() {
    // SAFETY: resetting a signal to its default action is always valid.
    unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
}

/// A handler that faults itself (loads from address 0).
fn faulting_handler(_: &ExceptionTableEntry, _: &mut dyn ExRegs, _: &Trap) -> bool {
    let v: usize;
    // SAFETY: deliberately faults, with no table entry, to test recursion detection.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("mov {v}, [{p}]", p = in(reg) 0usize, v = out(reg) v)
    };
    // SAFETY: as above.
    #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
    unsafe {
        core::arch::asm!("ldr {v}, [{p}]", p = in(reg) 0usize, v = out(reg) v)
    };
    v == 1
}

/// Load a word from address 0 in a block whose handler is `faulting_handler`.
fn load_with_faulting_handler() {
    // SAFETY: the load faults; its entry sends the fault to `faulting_handler`, which faults
    // in turn: the process must die with a report.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        extable_runtime::asm!(
            "[ex => 2f] mov {v}, qword ptr [{p}]",
            "2:",
            p = in(reg) 0usize, v = out(reg) _, handler = faulting_handler,
        )
    };
    // SAFETY: as above.
    #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
    unsafe {
        extable_runtime::asm!(
            "[ex => 2f] ldr {v}, [{p}]",
            "2:",
            p = in(reg) 0usize, v = out(reg) _, handler = faulting_handler,
        )
    };
}

/// Eight threads install the backend at once, then each has a fault fixed.
fn install_from_many_threads() {
    let ready = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                ready.fetch_add(1, Ordering::SeqCst);
                while ready.load(Ordering::SeqCst) < 8 {
                    std::hint::spin_loop();
                }
                hosted::install().expect("install");
                hosted::install().expect("install again");
                let page = map(4096);
                let mut buf = [0u8; 64];
                // The 32 bytes past the page are unmapped: a real fault, fixed.
                assert_eq!(copy_from_user(&mut buf, UserPtr::new(page + 4096 - 32)), 32);
            });
        }
    });
}

/// The calling thread's `SIGSEGV` handler address.
fn sigsegv_handler() -> libc::sighandler_t {
    // SAFETY: a zeroed sigaction is a valid output buffer; a null new action only queries.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut old) },
        0
    );
    old.sa_sigaction
}

/// Make `install` fail (no memory for the alternate stack: the address-space limit is set
/// just above what the process uses), check that it left the process as it was, then lift
/// the limit and install for real.
#[cfg(target_arch = "x86_64")]
fn install_fails_cleanly() {
    default_action();
    let off = libc::stack_t {
        ss_sp: std::ptr::null_mut(),
        ss_flags: libc::SS_DISABLE,
        ss_size: 0,
    };
    // SAFETY: no handler runs on this thread now.
    assert_eq!(unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) }, 0);
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    let tight = libc::rlimit {
        rlim_cur: pages * 4096 + 16 * 1024,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: lowering our own soft limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &tight) }, 0);
    let failed = hosted::install();
    let loose = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: restoring the limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &loose) }, 0);
    assert!(
        matches!(failed, Err(hosted::InstallError::AltStack(_))),
        "{failed:?}"
    );
    assert_eq!(sigsegv_handler(), libc::SIG_DFL, "no handler left behind");
    assert_eq!(alt_stack(), None, "no alternate stack left behind");
    hosted::install().expect("install once memory is there");
    assert_ne!(sigsegv_handler(), libc::SIG_DFL);
    assert!(alt_stack().is_some());
    common::user_region();
    let page = map(4096);
    let mut buf = [0u8; 64];
    assert_eq!(copy_from_user(&mut buf, UserPtr::new(page + 4096 - 32)), 32);
}

#[test]
fn child_scenarios() {
    match std::env::var("EXTABLE_CHILD").as_deref() {
        Ok("sent-during-copies") => {
            default_action();
            setup();
            copy_while_signalled(20, false);
            std::process::exit(0);
        }
        Ok("sent-outside-marked-code") => {
            default_action();
            setup();
            // SAFETY: raise is always valid; with the default action the process dies here.
            unsafe { libc::raise(libc::SIGSEGV) };
            std::process::exit(0);
        }
        Ok("sent-to-a-previous-handler") => {
            install_counting_handler();
            setup();
            copy_while_signalled(20, true);
            std::process::exit(if COUNTED.load(Ordering::Relaxed) == 20 {
                0
            } else {
                5
            });
        }
        Ok("fault-in-handler") => {
            setup();
            load_with_faulting_handler();
            std::process::exit(0);
        }
        #[cfg(target_arch = "x86_64")]
        Ok("install-fails") => {
            install_fails_cleanly();
            std::process::exit(0);
        }
        Ok("install-race") => {
            default_action();
            common::user_region();
            install_from_many_threads();
            std::process::exit(0);
        }
        _ => {}
    }
}

#[test]
fn a_sent_sigsegv_kills_as_without_the_backend_even_during_a_marked_copy() {
    let (status, stderr) = in_child("child_scenarios", "sent-during-copies");
    assert!(killed_by_sigsegv(status), "{status:?} {stderr}");
}

#[test]
fn a_sent_sigsegv_outside_marked_code_kills_too() {
    let (status, stderr) = in_child("child_scenarios", "sent-outside-marked-code");
    assert!(killed_by_sigsegv(status), "{status:?} {stderr}");
}

#[test]
fn a_sent_sigsegv_goes_to_the_previous_handler_and_copies_stay_whole() {
    let (status, stderr) = in_child("child_scenarios", "sent-to-a-previous-handler");
    assert_eq!(status.code(), Some(0), "{status:?} {stderr}");
}

#[test]
fn a_fault_inside_a_handler_is_reported_as_recursive_and_kills() {
    let (status, stderr) = in_child("child_scenarios", "fault-in-handler");
    assert!(killed_by_sigsegv(status), "{status:?} {stderr}");
    assert!(stderr.contains("recursive fault"), "stderr: {stderr}");
}

#[test]
fn install_from_many_threads_at_once_works_in_each() {
    let (status, stderr) = in_child("child_scenarios", "install-race");
    assert_eq!(status.code(), Some(0), "{status:?} {stderr}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_failed_install_leaves_the_process_as_it_was() {
    let (status, stderr) = in_child("child_scenarios", "install-fails");
    assert_eq!(status.code(), Some(0), "{status:?} {stderr}");
}

/// The permissions of the mapping holding `addr`, from `/proc/self/maps`.
fn permissions(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().find_map(|line| {
        let (range, rest) = line.split_once(' ')?;
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        (lo..hi).contains(&addr).then(|| rest[..4].to_string())
    })
}

/// The calling thread's alternate signal stack: (base, size), or `None`.
fn alt_stack() -> Option<(usize, usize)> {
    // SAFETY: a zeroed stack_t is a valid output buffer; a null new stack only queries.
    let mut ss: libc::stack_t = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::sigaltstack(std::ptr::null(), &mut ss) }, 0);
    (ss.ss_flags & libc::SS_DISABLE == 0).then_some((ss.ss_sp as usize, ss.ss_size))
}

#[test]
fn a_thread_gets_one_alternate_stack_with_a_guard_page_freed_at_exit() {
    setup();
    let stack = std::thread::spawn(|| {
        // The Rust runtime may have given the thread a stack already: drop it to get ours.
        let off = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: no signal handler runs on this thread now.
        assert_eq!(unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) }, 0);
        hosted::install().expect("install");
        let (base, size) = alt_stack().expect("an alternate stack");
        assert!(size >= 16 * 1024);
        assert_eq!(permissions(base).as_deref(), Some("rw-p"));
        assert_eq!(
            permissions(base - 1).map(|p| p.starts_with("---")),
            Some(true),
            "a guard page below the stack"
        );
        for _ in 0..1000 {
            hosted::install().expect("install");
        }
        assert_eq!(
            alt_stack(),
            Some((base, size)),
            "one stack per thread, not per call"
        );
        base
    })
    .join()
    .unwrap();
    assert_eq!(permissions(stack), None, "unmapped when the thread exited");
}
