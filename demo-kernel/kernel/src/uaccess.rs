//! The uaccess primitives of `extable_runtime::uaccess`, with the user copies
//! taking plain addresses as the kernel's system calls and trap handlers hold them.

pub use extable_runtime::uaccess::{
    access_ok, copy_from_kernel_nofault, get_user, put_user, Efault, UserPtr,
};

/// Copy `dst.len()` bytes from user address `src`; returns the bytes NOT copied (Linux's
/// contract: exact at a fault; everything when the range check refuses `src`).
pub fn copy_from_user(dst: &mut [u8], src: usize) -> usize {
    extable_runtime::uaccess::copy_from_user(dst, UserPtr::new(src))
}

/// Copy `src` to user address `dst`; returns the bytes NOT copied.
pub fn copy_to_user(dst: usize, src: &[u8]) -> usize {
    extable_runtime::uaccess::copy_to_user(UserPtr::new(dst), src)
}
