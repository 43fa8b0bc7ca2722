//! Helpers shared by the hosted test binaries: test mappings and the backend's install.
#![allow(dead_code)] // each test binary uses its own subset

use extable_runtime::hosted;

/// The page size of every Linux target tested here.
pub const PAGE: usize = 4096;

/// `len` bytes of fresh anonymous read-write memory (never unmapped: tests are short-lived).
pub fn map(len: usize) -> usize {
    // SAFETY: an anonymous private mapping has no preconditions; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    p as usize
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

/// Install the hosted backend (idempotent; gives the calling thread its alternate stack).
pub fn setup() {
    hosted::install().expect("install the hosted backend");
}
