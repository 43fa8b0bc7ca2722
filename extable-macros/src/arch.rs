//! What differs per architecture in the generated code: the register that carries the
//! fault record's address, and the out-of-line stub that flags the fault.
//!
//! The proc-macro runs on the host and cannot see the target, so the record-mode expansion
//! has one `#[cfg(target_arch = ...)]` variant per supported architecture.

/// A register that can carry the fault record's address.
pub struct RecordReg {
    /// The name in `asm!` (`in("r12")`) and in the stub.
    pub name: &'static str,
    /// The number the handler reads it by (`ExRegs::reg`).
    pub number: u8,
    /// Every name a user operand could use for the same register.
    pub aliases: &'static [&'static str],
}

/// One supported architecture.
pub struct Arch {
    /// The `target_arch` value.
    pub cfg: &'static str,
    /// Candidates for the record register: callee-saved, so `clobber_abi` never takes them.
    pub record_regs: &'static [RecordReg],
    /// The stub that flags a fault: writes the (non-null) record address into the record's
    /// first word, then branches back to the end of the block. Arguments: register, stub
    /// label, end label, AT&T syntax.
    pub stub: fn(&str, u64, u64, bool) -> String,
}

macro_rules! reg {
    ($name:literal, $n:literal, [$($alias:literal),*]) => {
        RecordReg { name: $name, number: $n, aliases: &[$name, $($alias),*] }
    };
}

fn x86_64_stub(reg: &str, stub: u64, end: u64, att: bool) -> String {
    if att {
        format!("{stub}: movq %{reg}, (%{reg})\njmp {end}b")
    } else {
        format!("{stub}: mov qword ptr [{reg}], {reg}\njmp {end}b")
    }
}

fn arm_stub(reg: &str, stub: u64, end: u64, _att: bool) -> String {
    format!(".balign 4\n{stub}: str {reg}, [{reg}]\nb {end}b")
}

/// The architectures the macros support.
pub const ARCHES: &[Arch] = &[
    Arch {
        cfg: "x86_64",
        record_regs: &[
            reg!("r12", 12, ["r12d", "r12w", "r12b"]),
            reg!("r13", 13, ["r13d", "r13w", "r13b"]),
            reg!("r14", 14, ["r14d", "r14w", "r14b"]),
            reg!("r15", 15, ["r15d", "r15w", "r15b"]),
        ],
        stub: x86_64_stub,
    },
    Arch {
        cfg: "arm",
        record_regs: &[
            reg!("r4", 4, ["v1"]),
            reg!("r5", 5, ["v2"]),
            reg!("r8", 8, ["v5"]),
            reg!("r10", 10, ["v7", "sl"]),
        ],
        stub: arm_stub,
    },
    Arch {
        cfg: "aarch64",
        record_regs: &[
            reg!("x20", 20, ["w20"]),
            reg!("x21", 21, ["w21"]),
            reg!("x22", 22, ["w22"]),
            reg!("x23", 23, ["w23"]),
            reg!("x24", 24, ["w24"]),
            reg!("x25", 25, ["w25"]),
            reg!("x26", 26, ["w26"]),
            reg!("x27", 27, ["w27"]),
            reg!("x28", 28, ["w28"]),
        ],
        stub: arm_stub,
    },
];

impl Arch {
    /// The first candidate none of `taken` names (explicit registers of the user's operands).
    pub fn free_record_reg(&self, taken: &[String]) -> Option<&'static RecordReg> {
        self.record_regs.iter().find(|r| {
            !r.aliases
                .iter()
                .any(|a| taken.iter().any(|t| t.eq_ignore_ascii_case(a)))
        })
    }
}
