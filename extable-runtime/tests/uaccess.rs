//! The uaccess primitives on real faults: PROT_NONE and read-only pages in Linux user space,
//! recovered by the hosted backend. Runs natively on x86_64 and under qemu-user on ARMv7
//! (A32, and T32 with the thumbv7neon target) and AArch64.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "arm", target_arch = "aarch64")
))]

use extable_runtime::hosted;
use extable_runtime::uaccess::{
    clear_user, copy_from_kernel_nofault, copy_from_user, copy_to_user, get_user, put_user,
    strncpy_from_user, Efault, UserPtr,
};

mod common;
use common::{map, peek, protect, setup, PAGE};

/// `readable` pages with `prot`, then one guard page with `guard`; returns the address of
/// the guard page. Never unmapped (tests are short-lived). The pages are filled with
/// `pattern(offset)` before protection changes.
fn pages(readable: usize, prot: libc::c_int, guard: libc::c_int) -> usize {
    let len = (readable + 1) * PAGE;
    let base = map(len);
    for i in 0..len {
        // SAFETY: inside the fresh read-write mapping, which no Rust reference covers.
        unsafe { ((base + i) as *mut u8).write_volatile(pattern(i)) };
    }
    protect(base, readable * PAGE, prot);
    protect(base + readable * PAGE, PAGE, guard);
    base + readable * PAGE
}

fn pattern(i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(7) | 1
}

/// The split positions tried: `k` readable bytes before the guard page.
fn splits() -> Vec<usize> {
    let mut ks: Vec<usize> = (0..=72).collect();
    ks.extend([127, 128, 255, 256, 1000, 4095, 4096, 4097, 8191, 8192]);
    ks
}

/// The lengths tried for a split `k`: every length up to 80, and around `k`.
fn lengths(k: usize) -> Vec<usize> {
    let mut ls: Vec<usize> = (0..=80).collect();
    for l in [k.saturating_sub(1), k, k + 1, k + 7, k + 64, k + 4096] {
        if !ls.contains(&l) {
            ls.push(l);
        }
    }
    ls
}

#[test]
fn copy_from_user_into_prot_none_returns_the_exact_remainder_at_every_split() {
    setup();
    let guard = pages(2, libc::PROT_READ, libc::PROT_NONE);
    let region = guard - 2 * PAGE;
    let mut checked = 0;
    for k in splits() {
        for len in lengths(k) {
            let src = guard - k;
            let mut dst = vec![0xeeu8; len];
            let left = copy_from_user(&mut dst, UserPtr::new(src));
            let copied = len.min(k);
            assert_eq!(left, len - copied, "k={k} len={len}");
            for (i, b) in dst.iter().enumerate() {
                let want = if i < copied {
                    pattern(src - region + i)
                } else {
                    0
                };
                assert_eq!(*b, want, "k={k} len={len} byte {i}");
            }
            checked += 1;
        }
    }
    assert!(checked > 6000);
}

#[test]
fn copy_to_user_into_a_read_only_page_returns_the_exact_remainder_at_every_split() {
    setup();
    let guard = pages(2, libc::PROT_READ | libc::PROT_WRITE, libc::PROT_READ);
    let region = guard - 2 * PAGE;
    for k in splits() {
        for len in lengths(k) {
            let dst = guard - k;
            let src: Vec<u8> = (0..len).map(|i| !pattern(i + k)).collect();
            let left = copy_to_user(UserPtr::new(dst), &src);
            let copied = len.min(k);
            assert_eq!(left, len - copied, "k={k} len={len}");
            for (i, &sent) in src.iter().enumerate().take(k + 16) {
                let want = if i < copied {
                    sent
                } else {
                    pattern(dst - region + i)
                };
                assert_eq!(peek(dst + i), want, "k={k} len={len} byte {i}");
            }
            // Restore the pattern for the next case.
            let restore: Vec<u8> = (0..copied).map(|i| pattern(dst - region + i)).collect();
            assert_eq!(copy_to_user(UserPtr::new(dst), &restore), 0);
        }
    }
}

#[test]
fn copies_that_fit_copy_everything() {
    setup();
    let guard = pages(3, libc::PROT_READ | libc::PROT_WRITE, libc::PROT_NONE);
    let region = guard - 3 * PAGE;
    for (off, len) in [(0, 3 * PAGE), (1, 3 * PAGE - 1), (5, 1000), (4093, 4100)] {
        let mut buf = vec![0u8; len];
        assert_eq!(copy_from_user(&mut buf, UserPtr::new(region + off)), 0);
        assert!(buf.iter().enumerate().all(|(i, b)| *b == pattern(off + i)));
        let inverted: Vec<u8> = buf.iter().map(|b| !b).collect();
        assert_eq!(copy_to_user(UserPtr::new(region + off), &inverted), 0);
        assert!((0..len).all(|i| peek(region + off + i) == !pattern(off + i)));
        let restore: Vec<u8> = (0..len).map(|i| pattern(off + i)).collect();
        assert_eq!(copy_to_user(UserPtr::new(region + off), &restore), 0);
    }
}

#[test]
fn copy_from_unmapped_memory_copies_nothing_and_zeroes_the_buffer() {
    setup();
    let guard = pages(1, libc::PROT_READ, libc::PROT_NONE);
    let mut buf = [0x55u8; 64];
    assert_eq!(copy_from_user(&mut buf, UserPtr::new(guard)), 64);
    assert_eq!(buf, [0u8; 64]);
    assert_eq!(copy_from_user(&mut buf, UserPtr::new(0)), 64);
    assert_eq!(copy_to_user(UserPtr::new(guard + 100), &buf), 64);
}

#[test]
fn clear_user_returns_the_exact_count_not_cleared_at_every_split() {
    setup();
    let guard = pages(2, libc::PROT_READ | libc::PROT_WRITE, libc::PROT_READ);
    let region = guard - 2 * PAGE;
    for k in splits() {
        for len in lengths(k) {
            let dst = guard - k;
            let left = clear_user(UserPtr::new(dst), len);
            let cleared = len.min(k);
            assert_eq!(left, len - cleared, "k={k} len={len}");
            for i in 0..len.min(k + 16) {
                let want = if i < cleared {
                    0
                } else {
                    pattern(dst - region + i)
                };
                assert_eq!(peek(dst + i), want, "k={k} len={len} byte {i}");
            }
            let restore: Vec<u8> = (0..cleared).map(|i| pattern(dst - region + i)).collect();
            assert_eq!(copy_to_user(UserPtr::new(dst), &restore), 0);
        }
    }
}

/// The value of `size` bytes at `offset` of a pattern mapping, little-endian.
fn pattern_word(offset: usize, size: usize) -> u64 {
    (0..size).fold(0u64, |acc, i| {
        acc | (u64::from(pattern(offset + i)) << (8 * i))
    })
}

#[test]
fn get_user_reads_every_width_and_faults_at_the_guard_page() {
    setup();
    let guard = pages(1, libc::PROT_READ, libc::PROT_NONE);
    let region = guard - PAGE;
    for off in [0usize, 1, 2, 3, 8, 100] {
        let a = region + off;
        assert_eq!(
            get_user(UserPtr::<u8>::new(a)),
            Ok(pattern_word(off, 1) as u8)
        );
        assert_eq!(
            get_user(UserPtr::<u16>::new(a)),
            Ok(pattern_word(off, 2) as u16)
        );
        assert_eq!(
            get_user(UserPtr::<u32>::new(a)),
            Ok(pattern_word(off, 4) as u32)
        );
        assert_eq!(get_user(UserPtr::<u64>::new(a)), Ok(pattern_word(off, 8)));
        let size = std::mem::size_of::<usize>();
        assert_eq!(
            get_user(UserPtr::<usize>::new(a)),
            Ok(pattern_word(off, size) as usize)
        );
    }
    assert_eq!(get_user(UserPtr::<u8>::new(guard)), Err(Efault));
    assert_eq!(get_user(UserPtr::<u16>::new(guard + 2)), Err(Efault));
    assert_eq!(get_user(UserPtr::<u32>::new(guard + 4)), Err(Efault));
    assert_eq!(get_user(UserPtr::<u64>::new(guard + 8)), Err(Efault));
    assert_eq!(get_user(UserPtr::<usize>::new(guard)), Err(Efault));
    // A word that straddles into the guard page faults too.
    assert_eq!(get_user(UserPtr::<u64>::new(guard - 4)), Err(Efault));
    assert_eq!(get_user(UserPtr::<u32>::new(0)), Err(Efault));
    assert_eq!(Efault.to_errno(), -14);
}

#[test]
fn get_user_of_an_all_ones_or_efault_value_is_not_an_error() {
    setup();
    let guard = pages(1, libc::PROT_READ | libc::PROT_WRITE, libc::PROT_NONE);
    let a = guard - 16;
    assert_eq!(put_user(u64::MAX, UserPtr::new(a)), Ok(()));
    assert_eq!(get_user(UserPtr::<u64>::new(a)), Ok(u64::MAX));
    assert_eq!(put_user(-14i64 as u64, UserPtr::new(a)), Ok(()));
    assert_eq!(get_user(UserPtr::<u64>::new(a)), Ok(-14i64 as u64));
}

#[test]
fn put_user_writes_every_width_and_faults_on_read_only_and_prot_none_pages() {
    setup();
    let ro = pages(1, libc::PROT_READ | libc::PROT_WRITE, libc::PROT_READ);
    let a = ro - 64;
    assert_eq!(put_user(0xa5u8, UserPtr::new(a)), Ok(()));
    assert_eq!(peek(a), 0xa5);
    assert_eq!(put_user(0xbeefu16, UserPtr::new(a + 1)), Ok(()));
    assert_eq!(get_user(UserPtr::<u16>::new(a + 1)), Ok(0xbeef));
    assert_eq!(put_user(0xdead_beefu32, UserPtr::new(a + 3)), Ok(()));
    assert_eq!(get_user(UserPtr::<u32>::new(a + 3)), Ok(0xdead_beef));
    assert_eq!(
        put_user(0x0123_4567_89ab_cdefu64, UserPtr::new(a + 8)),
        Ok(())
    );
    assert_eq!(
        get_user(UserPtr::<u64>::new(a + 8)),
        Ok(0x0123_4567_89ab_cdef)
    );
    assert_eq!(put_user(usize::MAX - 1, UserPtr::new(a + 16)), Ok(()));
    assert_eq!(get_user(UserPtr::<usize>::new(a + 16)), Ok(usize::MAX - 1));

    let before: Vec<u8> = (0..16).map(|i| peek(ro + i)).collect();
    assert_eq!(put_user(1u8, UserPtr::new(ro)), Err(Efault));
    assert_eq!(put_user(1u16, UserPtr::new(ro + 2)), Err(Efault));
    assert_eq!(put_user(1u32, UserPtr::new(ro + 4)), Err(Efault));
    assert_eq!(put_user(1u64, UserPtr::new(ro + 8)), Err(Efault));
    assert_eq!(put_user(1usize, UserPtr::new(ro)), Err(Efault));
    let after: Vec<u8> = (0..16).map(|i| peek(ro + i)).collect();
    assert_eq!(before, after, "a refused store must not change the page");

    let none = pages(1, libc::PROT_READ | libc::PROT_WRITE, libc::PROT_NONE);
    assert_eq!(put_user(7u32, UserPtr::new(none)), Err(Efault));
    assert_eq!(put_user(7u64, UserPtr::new(0)), Err(Efault));
}

/// Write `bytes` at `addr` of a writable test mapping.
fn poke(addr: usize, bytes: &[u8]) {
    assert_eq!(copy_to_user(UserPtr::new(addr), bytes), 0);
}

#[test]
fn strncpy_from_user_returns_length_count_or_fault() {
    setup();
    let guard = pages(1, libc::PROT_READ | libc::PROT_WRITE, libc::PROT_NONE);
    let region = guard - PAGE;
    poke(region, b"hello\0world");
    let mut buf = [0xffu8; 32];
    assert_eq!(strncpy_from_user(&mut buf, UserPtr::new(region)), Ok(5));
    assert_eq!(&buf[..6], b"hello\0");
    // No NUL within count: count, unterminated.
    let mut small = [0xffu8; 3];
    assert_eq!(strncpy_from_user(&mut small, UserPtr::new(region)), Ok(3));
    assert_eq!(&small, b"hel");
    // Exactly count bytes before the NUL.
    let mut five = [0u8; 5];
    assert_eq!(strncpy_from_user(&mut five, UserPtr::new(region)), Ok(5));
    // The empty string, and count 0.
    assert_eq!(strncpy_from_user(&mut buf, UserPtr::new(region + 5)), Ok(0));
    assert_eq!(strncpy_from_user(&mut [], UserPtr::new(0)), Ok(0));
    // A string that runs into the guard page without a NUL faults.
    poke(guard - 4, b"abcd");
    assert_eq!(
        strncpy_from_user(&mut buf, UserPtr::new(guard - 4)),
        Err(Efault)
    );
    // ...unless count stops first, or the NUL is the last readable byte.
    let mut four = [0u8; 4];
    assert_eq!(strncpy_from_user(&mut four, UserPtr::new(guard - 4)), Ok(4));
    poke(guard - 4, b"abc\0");
    assert_eq!(strncpy_from_user(&mut buf, UserPtr::new(guard - 4)), Ok(3));
    assert_eq!(&buf[..4], b"abc\0");
    assert_eq!(
        strncpy_from_user(&mut buf, UserPtr::new(guard)),
        Err(Efault)
    );
    assert_eq!(strncpy_from_user(&mut buf, UserPtr::new(0)), Err(Efault));
}

#[test]
fn copy_from_kernel_nofault_of_null_and_0x880_is_an_error() {
    setup();
    let mut buf = [0u8; 8];
    // SAFETY: reading unmapped low memory has no side effects; it faults and is fixed.
    unsafe {
        assert_eq!(
            copy_from_kernel_nofault(&mut buf, std::ptr::null()),
            Err(Efault)
        );
        assert_eq!(
            copy_from_kernel_nofault(&mut buf, 0x880 as *const u8),
            Err(Efault)
        );
        assert_eq!(
            copy_from_kernel_nofault(&mut buf, usize::MAX as *const u8),
            Err(Efault)
        );
    }
    let data = [1u8, 2, 3, 4, 5, 6, 7, 8];
    // SAFETY: `data` is readable memory nobody writes.
    unsafe {
        assert_eq!(copy_from_kernel_nofault(&mut buf, data.as_ptr()), Ok(()));
    }
    assert_eq!(buf, data);
    let guard = pages(1, libc::PROT_READ, libc::PROT_NONE);
    let mut two = [0u8; 2];
    // SAFETY: a read across into the guard page faults and is fixed.
    unsafe {
        assert_eq!(
            copy_from_kernel_nofault(&mut two, (guard - 1) as *const u8),
            Err(Efault)
        );
    }
}

/// A readable page, then a `PROT_NONE` one, outside the user range (kernel memory, as far as
/// the probe is concerned); returns the address of the `PROT_NONE` page.
fn kernel_pages() -> usize {
    // SAFETY: an anonymous private mapping has no preconditions; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    let p = p as usize;
    assert!(!common::user_region().contains(&p));
    // SAFETY: the fresh mapping is ours; nothing references it.
    unsafe { std::ptr::write_bytes(p as *mut u8, 0x3c, PAGE) };
    protect(p + PAGE, PAGE, libc::PROT_NONE);
    p + PAGE
}

#[test]
fn copy_from_kernel_nofault_takes_one_fault_per_bad_address() {
    setup();
    let bad = kernel_pages();
    for (start, len) in [(bad, 8), (bad - 3, 8), (bad - 1, 4096)] {
        let mut buf = vec![0u8; len];
        let before = hosted::faults_fixed_on_this_thread();
        // SAFETY: reading our own mappings has no side effects; the bad part faults.
        let r = unsafe { copy_from_kernel_nofault(&mut buf, start as *const u8) };
        let taken = hosted::faults_fixed_on_this_thread() - before;
        assert_eq!(r, Err(Efault), "{start:#x}+{len}");
        assert_eq!(taken, 1, "{start:#x}+{len}: one fault, no retry");
    }
    let mut buf = [0u8; 16];
    // SAFETY: as above; the readable page.
    assert_eq!(
        unsafe { copy_from_kernel_nofault(&mut buf, (bad - 16) as *const u8) },
        Ok(())
    );
    assert_eq!(buf, [0x3c; 16]);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn copy_from_kernel_nofault_refuses_user_and_non_canonical_addresses_before_any_access() {
    setup();
    // Readable user memory: the read would succeed, so a refusal shows it was not done.
    let user = pages(1, libc::PROT_READ, libc::PROT_NONE) - PAGE;
    let kernel = kernel_pages() - PAGE;
    let before = hosted::faults_fixed_on_this_thread();
    let mut buf = [0u8; 8];
    for addr in [
        user,
        user + PAGE - 4,
        common::user_region().start - 4,
        0x8000_0000_0000,
        0xffff_7fff_ffff_fffc,
        0x7fff_ffff_fffc,
    ] {
        // SAFETY: refused before any access (and would be side-effect free reads anyway).
        let r = unsafe { copy_from_kernel_nofault(&mut buf, addr as *const u8) };
        assert_eq!(r, Err(Efault), "{addr:#x}");
    }
    assert_eq!(
        hosted::faults_fixed_on_this_thread(),
        before,
        "refused without a fault"
    );
    // SAFETY: our readable kernel-side page.
    assert_eq!(
        unsafe { copy_from_kernel_nofault(&mut buf, kernel as *const u8) },
        Ok(())
    );
}
