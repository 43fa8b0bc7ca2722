//! Helpers shared by the hosted test binaries: test mappings and the backend's install.
#![allow(dead_code)] // each test binary uses its own subset

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use extable_runtime::hosted;
use extable_runtime::uaccess::set_user_range;

/// The page size of every Linux target tested here.
pub const PAGE: usize = 4096;

/// Size of the region reserved for test mappings, which is the test binary's user range.
const USER_REGION: usize = 64 << 20;

/// The user range of the test binaries: a reserved `PROT_NONE` region that test mappings
/// are carved out of (so nothing else, no heap block or stack, is ever in it). Reserved, and
/// made the user range, on first use.
pub fn user_region() -> std::ops::Range<usize> {
    static REGION: OnceLock<usize> = OnceLock::new();
    let base = *REGION.get_or_init(|| {
        // SAFETY: an anonymous private reservation has no preconditions; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                USER_REGION,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: the region is fresh and only ever accessed through raw pointers by the
        // tests and through the uaccess functions: no Rust reference covers it.
        unsafe { set_user_range(p as usize..p as usize + USER_REGION) };
        p as usize
    });
    base..base + USER_REGION
}

/// `len` bytes of fresh read-write memory in the user region, followed by an unmapped page
/// (never unmapped: tests are short-lived).
pub fn map(len: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let region = user_region();
    let len = len.next_multiple_of(PAGE);
    let offset = NEXT.fetch_add(len + PAGE, Ordering::Relaxed);
    assert!(offset + len <= region.len(), "the test region is full");
    let p = region.start + offset;
    protect(p, len, libc::PROT_READ | libc::PROT_WRITE);
    p
}

/// Change the protection of `len` bytes at `addr`, a range of a test mapping.
pub fn protect(addr: usize, len: usize, prot: libc::c_int) {
    // SAFETY: the range is inside a mapping made by `map`, which no Rust reference covers.
    assert_eq!(
        unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) },
        0
    );
}

/// Read a byte of a test mapping through a raw pointer (never through a reference).
pub fn peek(addr: usize) -> u8 {
    // SAFETY: callers pass addresses inside readable test mappings.
    unsafe { (addr as *const u8).read_volatile() }
}

/// Install the hosted backend (idempotent; gives the calling thread its alternate stack) and
/// establish the test region as the user range.
pub fn setup() {
    user_region();
    hosted::install().expect("install the hosted backend");
}

/// Runs `scenario` in a child process (this test binary, filtered to one test) and returns
/// its status and standard error. Under qemu-user (cross-testing without binfmt) the binary
/// cannot exec itself, so the child then runs under the emulator named by `EXTABLE_QEMU`.
pub fn in_child(test_name: &str, scenario: &str) -> (std::process::ExitStatus, String) {
    let exe = std::env::current_exe().unwrap();
    let args = [test_name, "--exact", "--nocapture", "--test-threads=1"];
    let run = |cmd: &mut Command| {
        cmd.args(args)
            .env("EXTABLE_CHILD", scenario)
            .output()
            .ok()
            .filter(|out| out.status.code() != Some(127))
    };
    let out = run(&mut Command::new(&exe)).or_else(|| {
        let qemu =
            std::env::var("EXTABLE_QEMU").expect("cannot exec the test binary; set EXTABLE_QEMU");
        let mut words = qemu.split_whitespace();
        let mut cmd = Command::new(words.next().expect("EXTABLE_QEMU names a program"));
        cmd.args(words).arg(&exe);
        run(&mut cmd)
    });
    let out = out.expect("run the child");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn killed_by_sigsegv(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGSEGV)
}
