//! Architecture-specific pieces: each architecture's saved exception frame (its `pt_regs`)
//! with its [`ExRegs`](crate::ExRegs) implementation.
//!
//! The frames are plain data and compile on every host, so kernels, the hosted backend and
//! tests share them.

pub mod aarch64;
pub mod arm;
pub mod x86_64;
