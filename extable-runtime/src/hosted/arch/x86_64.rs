//! x86_64 Linux: `gregs` <-> [`PtRegs`].

use crate::arch::x86_64::{trap as x86trap, PtRegs};
use crate::trap::{FaultKind, Trap};

use super::{fault_address, kind_from_signal};

/// `gregs` index of each `PtRegs` general register, in `PtRegs` field order r15..rdi.
const GPRS: [libc::c_int; 15] = [
    libc::REG_R15,
    libc::REG_R14,
    libc::REG_R13,
    libc::REG_R12,
    libc::REG_RBP,
    libc::REG_RBX,
    libc::REG_R11,
    libc::REG_R10,
    libc::REG_R9,
    libc::REG_R8,
    libc::REG_RAX,
    libc::REG_RCX,
    libc::REG_RDX,
    libc::REG_RSI,
    libc::REG_RDI,
];

fn gprs_mut(regs: &mut PtRegs) -> [&mut u64; 15] {
    [
        &mut regs.r15,
        &mut regs.r14,
        &mut regs.r13,
        &mut regs.r12,
        &mut regs.rbp,
        &mut regs.rbx,
        &mut regs.r11,
        &mut regs.r10,
        &mut regs.r9,
        &mut regs.r8,
        &mut regs.rax,
        &mut regs.rcx,
        &mut regs.rdx,
        &mut regs.rsi,
        &mut regs.rdi,
    ]
}

/// The trap: the CPU's trap number and error code, as the kernel saved them.
pub(crate) fn trap(sig: libc::c_int, info: &libc::siginfo_t, uc: &libc::ucontext_t) -> Trap {
    let g = &uc.uc_mcontext.gregs;
    let trapno = g[libc::REG_TRAPNO as usize] as u32;
    let kind = match trapno {
        x86trap::GP => FaultKind::GeneralProtection,
        _ => kind_from_signal(sig, info.si_code),
    };
    let trap = Trap::new(sig as u32, kind).with_error_code(g[libc::REG_ERR as usize] as u64);
    match kind {
        // A #GP reports no address (si_addr is 0).
        FaultKind::GeneralProtection => trap,
        _ => trap.with_address(fault_address(info)),
    }
}

/// The saved registers as a `PtRegs` frame.
pub(crate) fn frame(uc: &libc::ucontext_t) -> PtRegs {
    let g = &uc.uc_mcontext.gregs;
    let mut regs = PtRegs {
        rip: g[libc::REG_RIP as usize] as u64,
        rsp: g[libc::REG_RSP as usize] as u64,
        rflags: g[libc::REG_EFL as usize] as u64,
        orig_rax: g[libc::REG_ERR as usize] as u64,
        ..PtRegs::default()
    };
    for (slot, &index) in gprs_mut(&mut regs).into_iter().zip(GPRS.iter()) {
        *slot = g[index as usize] as u64;
    }
    regs
}

/// Write pc and general registers back.
pub(crate) fn write_back(regs: &PtRegs, uc: &mut libc::ucontext_t) {
    let mut regs = *regs;
    let g = &mut uc.uc_mcontext.gregs;
    g[libc::REG_RIP as usize] = regs.rip as i64;
    g[libc::REG_RSP as usize] = regs.rsp as i64;
    for (slot, &index) in gprs_mut(&mut regs).into_iter().zip(GPRS.iter()) {
        g[index as usize] = *slot as i64;
    }
}
