//! What a fault at a marked instruction hands back: [`Fault`], and the record the macros'
//! out-of-line fixup fills.

use core::fmt;

use crate::entry::ExceptionTableEntry;
use crate::handlers;
use crate::regs::ExRegs;
use crate::report::{report, Level};
use crate::trap::Trap;

/// A fault at an `[ex]`-marked instruction, fixed through the table.
///
/// Carries the trap (kind, number, error code and, when the CPU reports one, the fault
/// address) when the entry's handler recorded it: the default handler of a block without a
/// `fixup` label does; a `handler = ...` of the block's own choosing does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    trap: Option<Trap>,
}

impl Fault {
    /// A fault with an optional recorded trap.
    pub const fn new(trap: Option<Trap>) -> Self {
        Fault { trap }
    }

    /// Convert into the caller's error type: what an `#[extable]` function returns as its
    /// `Err` (a generic function, so a function returning `Result<_, Fault>` itself is no
    /// "useless conversion" in the caller's code).
    #[inline]
    pub fn into_error<E: From<Fault>>(self) -> E {
        E::from(self)
    }

    /// The trap, when the handler recorded it.
    pub fn trap(&self) -> Option<&Trap> {
        self.trap.as_ref()
    }

    /// The faulting data address, when known.
    pub fn address(&self) -> Option<usize> {
        self.trap.and_then(|t| t.address)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.trap, self.address()) {
            (Some(t), Some(a)) => write!(f, "fault ({:?}, trap {}) at {a:#x}", t.kind, t.nr),
            (Some(t), None) => write!(f, "fault ({:?}, trap {})", t.kind, t.nr),
            (None, _) => f.write_str("fault"),
        }
    }
}

/// The record of one marked block, on the stack of the function that runs it.
///
/// The block gets its address in a register. A fault's fixup stub writes that address into
/// `flag` (so any fault, whatever its handler, reads as one); the default handler
/// ([`record`]) writes the trap. Not for direct use: the macros create and read it.
#[doc(hidden)]
#[repr(C)]
#[derive(Debug)]
pub struct FaultRecord {
    flag: usize,
    trap: Option<Trap>,
}

impl FaultRecord {
    /// A record of no fault.
    #[inline(always)]
    pub const fn new() -> Self {
        FaultRecord {
            flag: 0,
            trap: None,
        }
    }

    /// `Ok` when the block ran without a fault.
    #[inline(always)]
    pub fn result(&self) -> Result<(), Fault> {
        if self.flag == 0 {
            Ok(())
        } else {
            Err(Fault::new(self.trap))
        }
    }
}

impl Default for FaultRecord {
    fn default() -> Self {
        Self::new()
    }
}

/// The default handler of a block's `[ex]` marks: write the trap into the [`FaultRecord`]
/// whose address is in register `REG`, then resume at the fixup stub (which flags it).
///
/// Declines (the fault goes on to the oops path) when `REG` does not hold a plausible
/// record address: the block broke its contract of leaving the register alone.
pub fn record<const REG: u8>(
    entry: &ExceptionTableEntry,
    regs: &mut dyn ExRegs,
    trap: &Trap,
) -> bool {
    let addr = regs.reg(REG).unwrap_or(0);
    if addr == 0 || !addr.is_multiple_of(core::mem::align_of::<FaultRecord>()) {
        report(
            Level::Fatal,
            format_args!(
                "extable: fault at {:#x}: register {REG} does not hold the fault record ({addr:#x})",
                regs.pc()
            ),
        );
        return false;
    }
    let rec = addr as *mut FaultRecord;
    // SAFETY: the macros pass `&mut FaultRecord` of the running block in register `REG`
    // (an input operand, which the block must not change); the faulting code is that block,
    // on this CPU or thread, so the record is live and nothing else accesses it now.
    unsafe { core::ptr::addr_of_mut!((*rec).trap).write(Some(*trap)) };
    handlers::default(entry, regs, trap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::x86_64::PtRegs;
    use crate::trap::FaultKind;

    fn entry() -> ExceptionTableEntry {
        ExceptionTableEntry {
            insn: 0,
            fixup: 0x40,
            handler: 0,
        }
    }

    #[test]
    fn record_writes_the_trap_and_resumes_at_the_fixup() {
        let e = entry();
        let mut rec = FaultRecord::new();
        let mut regs = PtRegs {
            r12: core::ptr::addr_of_mut!(rec) as u64,
            ..PtRegs::default()
        };
        let trap = Trap::new(14, FaultKind::NotMapped).with_address(0x880);
        assert!(record::<12>(&e, &mut regs, &trap));
        assert_eq!(regs.rip as usize, e.fixup_addr());
        // The stub, not the handler, flags the fault.
        assert_eq!(rec.result(), Ok(()));
        rec.flag = 1;
        let fault = rec.result().unwrap_err();
        assert_eq!(fault.address(), Some(0x880));
        assert_eq!(fault.trap().map(|t| t.nr), Some(14));
    }

    #[test]
    fn record_declines_without_a_record_address() {
        let e = entry();
        let mut regs = PtRegs::default();
        let trap = Trap::new(14, FaultKind::NotMapped);
        assert!(!record::<12>(&e, &mut regs, &trap));
        regs.r12 = 3;
        assert!(!record::<12>(&e, &mut regs, &trap));
        assert!(!record::<99>(&e, &mut regs, &trap));
        assert_eq!(regs.rip, 0, "a declined fault keeps its pc");
    }
}
