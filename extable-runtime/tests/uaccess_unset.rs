//! Without an established user range, safe code cannot reach Rust-owned memory through the
//! user-access functions: every primitive, aimed at a local, a `String`'s buffer and a heap
//! buffer, fails with `Efault` (or "nothing copied") and leaves the memory as it was.
//!
//! Its own test binary (the user range is process-wide), and no `unsafe` at all: this is
//! what safe code can do.
#![forbid(unsafe_code)]
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "arm", target_arch = "aarch64")
))]

use extable_runtime::uaccess::{
    access_ok, clear_user, copy_from_user, copy_to_user, get_user, put_user, strncpy_from_user,
    user_range, Efault, UserPtr,
};

/// Every primitive on the `len` bytes at `addr`, which hold Rust-owned memory.
fn try_everything(addr: usize, len: usize) {
    assert!(!access_ok(UserPtr::<u8>::new(addr), 0));
    assert!(!access_ok(UserPtr::<u8>::new(addr), len));
    assert_eq!(get_user(UserPtr::<u8>::new(addr)), Err(Efault));
    assert_eq!(put_user(7u8, UserPtr::new(addr)), Err(Efault));
    if len >= 8 {
        assert_eq!(get_user(UserPtr::<u16>::new(addr)), Err(Efault));
        assert_eq!(get_user(UserPtr::<u32>::new(addr)), Err(Efault));
        assert_eq!(get_user(UserPtr::<u64>::new(addr)), Err(Efault));
        assert_eq!(get_user(UserPtr::<usize>::new(addr)), Err(Efault));
        assert_eq!(put_user(7u16, UserPtr::new(addr)), Err(Efault));
        assert_eq!(put_user(7u32, UserPtr::new(addr)), Err(Efault));
        assert_eq!(put_user(7u64, UserPtr::new(addr)), Err(Efault));
        assert_eq!(put_user(7usize, UserPtr::new(addr)), Err(Efault));
    }
    let mut buf = vec![0xeeu8; len];
    assert_eq!(copy_from_user(&mut buf, UserPtr::new(addr)), len);
    assert!(
        buf.iter().all(|&b| b == 0),
        "a refused copy zeroes the buffer"
    );
    assert_eq!(copy_to_user(UserPtr::new(addr), &vec![0xc3; len]), len);
    assert_eq!(copy_to_user(UserPtr::new(addr), &[]), 0);
    assert_eq!(clear_user(UserPtr::new(addr), len), len);
    assert_eq!(strncpy_from_user(&mut buf, UserPtr::new(addr)), Err(Efault));
}

#[test]
fn without_a_user_range_safe_code_reaches_no_rust_memory() {
    assert!(user_range().is_empty(), "no default range");

    let local = 0x1122_3344_5566_7788u64;
    try_everything(&local as *const u64 as usize, 8);
    assert_eq!(local, 0x1122_3344_5566_7788);

    let string = String::from("still valid UTF-8, never written");
    try_everything(string.as_ptr() as usize, string.len());
    assert_eq!(string, "still valid UTF-8, never written");

    let heap = vec![0x5au8; 4096];
    try_everything(heap.as_ptr() as usize, heap.len());
    assert!(heap.iter().all(|&b| b == 0x5a));

    // Addresses near 0 and at the top of the address space too.
    for addr in [0, 0x1000, usize::MAX - 7] {
        try_everything(addr, 8);
    }
}
