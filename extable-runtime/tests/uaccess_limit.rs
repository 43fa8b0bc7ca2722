//! The access_ok range check refuses addresses outside the user range before any access,
//! and on x86_64 the SMAP switch decides whether STAC/CLAC are executed.
//!
//! Its own test binary: the user range and the SMAP switch are process-wide.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "arm", target_arch = "aarch64")
))]

use extable_runtime::uaccess::{
    access_ok, clear_user, copy_from_user, copy_to_user, get_user, put_user, set_user_range,
    strncpy_from_user, user_range, Efault, UserPtr, DEFAULT_USER_LIMIT,
};

mod common;
use common::{map, peek, setup, user_region, PAGE};

/// Two read-write pages filled with 0x77.
fn two_pages() -> usize {
    let p = map(2 * PAGE);
    // SAFETY: the fresh mapping is ours and no reference covers it.
    unsafe { std::ptr::write_bytes(p as *mut u8, 0x77, 2 * PAGE) };
    p
}

/// Every primitive refuses `addr` (readable and writable memory outside the user range)
/// without touching it: if it had accessed it, the access would have succeeded.
fn assert_refused_untouched(addr: usize) {
    assert!(!access_ok(UserPtr::<u8>::new(addr), 1));
    assert_eq!(get_user(UserPtr::<u8>::new(addr)), Err(Efault));
    assert_eq!(get_user(UserPtr::<u64>::new(addr)), Err(Efault));
    assert_eq!(put_user(0x11u8, UserPtr::new(addr)), Err(Efault));
    assert_eq!(put_user(0x11u32, UserPtr::new(addr)), Err(Efault));
    let mut buf = [0xeeu8; 16];
    assert_eq!(copy_from_user(&mut buf, UserPtr::new(addr)), 16);
    assert_eq!(buf, [0u8; 16], "refused copy_from_user zeroes the buffer");
    assert_eq!(copy_to_user(UserPtr::new(addr), &[0x22; 16]), 16);
    assert_eq!(clear_user(UserPtr::new(addr), 16), 16);
    assert_eq!(strncpy_from_user(&mut buf, UserPtr::new(addr)), Err(Efault));
    for i in 0..16 {
        assert_eq!(peek(addr + i), 0x77, "byte {i} at {addr:#x} was written");
    }
}

#[test]
fn the_range_check_refuses_kernel_addresses_before_any_access() {
    #[cfg(target_arch = "x86_64")]
    assert_eq!(DEFAULT_USER_LIMIT, 0x7fff_ffff_f000);
    setup();
    let region = user_region();
    assert_eq!(user_range(), region);

    // Linux's access_ok arithmetic at the edges of the range.
    let limit = region.end;
    assert!(access_ok(UserPtr::<u8>::new(limit), 0));
    assert!(!access_ok(UserPtr::<u8>::new(limit), 1));
    assert!(access_ok(UserPtr::<u8>::new(limit - 1), 1));
    assert!(!access_ok(UserPtr::<u8>::new(limit - 1), 2));
    assert!(!access_ok(UserPtr::<u8>::new(region.start), usize::MAX));
    assert!(!access_ok(UserPtr::<u8>::new(usize::MAX), 2));
    assert!(!access_ok(UserPtr::<u8>::new(region.start - 1), 1));
    // A kernel address above the limit is refused.
    assert_eq!(get_user(UserPtr::<u32>::new(limit)), Err(Efault));
    assert_eq!(get_user(UserPtr::<u32>::new(usize::MAX - 3)), Err(Efault));

    let p = two_pages();
    // Make the second page "kernel memory": above the user limit.
    // SAFETY: the range is part of the test region, which holds no Rust-referenced memory;
    // restored below.
    unsafe { set_user_range(region.start..p + PAGE) };
    assert_refused_untouched(p + PAGE);
    assert_refused_untouched(p + PAGE + 100);
    // A range that starts in user space and ends in the kernel is refused whole.
    let mut buf = [0xeeu8; 16];
    assert_eq!(copy_from_user(&mut buf, UserPtr::new(p + PAGE - 8)), 16);
    assert_eq!(copy_to_user(UserPtr::new(p + PAGE - 8), &[0x22; 16]), 16);
    assert_eq!(get_user(UserPtr::<u64>::new(p + PAGE - 4)), Err(Efault));
    assert!((0..8).all(|i| peek(p + PAGE - 8 + i) == 0x77));
    // Inside the range everything works.
    assert_eq!(get_user(UserPtr::<u8>::new(p)), Ok(0x77));
    assert_eq!(put_user(0x11u8, UserPtr::new(p)), Ok(()));
    assert_eq!(peek(p), 0x11);
    // strncpy_from_user stops at the end of the range: no NUL before it is a fault.
    assert_eq!(
        strncpy_from_user(&mut [0u8; 32], UserPtr::new(p + PAGE - 8)),
        Err(Efault)
    );
    assert_eq!(
        strncpy_from_user(&mut [0u8; 8], UserPtr::new(p + PAGE - 8)),
        Ok(8)
    );

    // A range that does not start at 0: below it is refused too.
    // SAFETY: as above.
    unsafe { set_user_range(p + PAGE..p + 2 * PAGE) };
    assert_refused_untouched(p + 16);
    assert_eq!(get_user(UserPtr::<u8>::new(p + PAGE)), Ok(0x77));

    // SAFETY: back to the test region.
    unsafe { set_user_range(region.clone()) };
    assert_eq!(user_range(), region);
}

/// Child mode of `stac_runs_only_when_smap_is_switched_on`: a user access with SMAP
/// bracketing on or off, then a clean exit.
#[cfg(target_arch = "x86_64")]
#[test]
#[ignore = "run by stac_runs_only_when_smap_is_switched_on in a child process"]
fn smap_child() {
    let Ok(mode) = std::env::var("EXTABLE_SMAP_CHILD") else {
        return;
    };
    setup();
    extable_runtime::uaccess::arch::set_smap(mode == "on");
    assert_eq!(extable_runtime::uaccess::arch::smap_enabled(), mode == "on");
    let p = two_pages();
    // STAC at CPL 3 is #UD: with bracketing on this dies of SIGILL right here.
    assert_eq!(get_user(UserPtr::<u8>::new(p)), Ok(0x77));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn stac_runs_only_when_smap_is_switched_on() {
    use std::os::unix::process::ExitStatusExt;
    let run = |mode: &str| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "smap_child", "--ignored", "--nocapture"])
            .env("EXTABLE_SMAP_CHILD", mode)
            .output()
            .expect("run the child")
    };
    assert!(
        !extable_runtime::uaccess::arch::smap_enabled(),
        "off by default"
    );
    let off = run("off");
    assert!(off.status.success(), "without SMAP bracketing: {off:?}");
    let on = run("on");
    assert_eq!(
        on.status.signal(),
        Some(libc::SIGILL),
        "with SMAP bracketing the user access executes STAC (#UD at CPL 3): {on:?}"
    );
}
