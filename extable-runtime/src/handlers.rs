//! Handler dispatch targets: the built-in handlers and the handler signature.
//!
//! An entry's third field points at a function of type [`Handler`]. The built-in handlers
//! mirror Linux's x86 `EX_TYPE_*` handlers; register parameters are const generics so that
//! each combination is its own monomorphised function and the entry stays 12 bytes.

use crate::entry::ExceptionTableEntry;
use crate::regs::{ExRegs, NO_REG};
use crate::report::{report, Level};
use crate::trap::{FaultKind, Trap};

/// The signature of every handler, built-in or user-defined.
///
/// Return `true` when the fault is fixed (the handler has rewritten the saved pc, normally
/// to [`ExceptionTableEntry::fixup_addr`]), `false` to let the fault go on to the oops path.
/// A handler runs in the fault context: it must not fault and must not block.
pub type Handler = fn(&ExceptionTableEntry, &mut dyn ExRegs, &Trap) -> bool;

/// `-EFAULT` as the machine word written by [`efault`].
pub const EFAULT: isize = -14;

/// Resume at the fixup (Linux's `ex_handler_default`, seed 001).
pub fn default(entry: &ExceptionTableEntry, regs: &mut dyn ExRegs, _trap: &Trap) -> bool {
    regs.set_pc(entry.fixup_addr());
    true
}

/// Resume at the fixup with the trap number in the return register
/// (Linux's `ex_handler_fault`, `EX_TYPE_FAULT`).
pub fn fault(entry: &ExceptionTableEntry, regs: &mut dyn ExRegs, trap: &Trap) -> bool {
    let ret = regs.return_reg();
    regs.set_reg(ret, trap.nr as usize);
    default(entry, regs, trap)
}

/// Put `-EFAULT` into register `ERR`, zero register `ZERO` unless it is [`NO_REG`], and
/// resume at the fixup (Linux's `EX_TYPE_EFAULT_REG`, with `EX_FLAG_CLEAR_AX` when `ZERO`
/// names the output register).
///
/// A register number the frame does not have makes the handler decline: a table that names
/// it is wrong, and guessing would corrupt the context.
pub fn efault<const ERR: u8, const ZERO: u8>(
    entry: &ExceptionTableEntry,
    regs: &mut dyn ExRegs,
    trap: &Trap,
) -> bool {
    if regs.reg(ERR).is_none() || (ZERO != NO_REG && regs.reg(ZERO).is_none()) {
        report(
            Level::Fatal,
            format_args!(
                "extable: efault handler names a register this frame lacks ({ERR}, {ZERO})"
            ),
        );
        return false;
    }
    if ZERO != NO_REG {
        regs.set_reg(ZERO, 0);
    }
    regs.set_reg(ERR, EFAULT as usize);
    default(entry, regs, trap)
}

/// As [`default`], but warn about a general-protection fault in a user access, which on x86
/// means a non-canonical user pointer (Linux's `ex_handler_uaccess`).
pub fn uaccess(entry: &ExceptionTableEntry, regs: &mut dyn ExRegs, trap: &Trap) -> bool {
    if trap.kind == FaultKind::GeneralProtection {
        report(
            Level::Warning,
            format_args!(
                "General protection fault in user access. Non-canonical address? (pc {:#x})",
                regs.pc()
            ),
        );
    }
    default(entry, regs, trap)
}

/// Read the handler an entry points to.
///
/// # Safety
/// The entry's handler field must point at a function of type [`Handler`], as every entry
/// the `extable` macros emit does.
pub unsafe fn handler_of(entry: &ExceptionTableEntry) -> Handler {
    // SAFETY: guaranteed by the caller; a function pointer and an address have the same size.
    unsafe { core::mem::transmute::<usize, Handler>(entry.handler_addr()) }
}
