//! An architecture-neutral description of the trap being fixed.

/// What kind of fault the CPU reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// A page or translation fault: no valid mapping for the address (x86 #PF with P=0,
    /// ARM translation fault, `SEGV_MAPERR`).
    NotMapped,
    /// A permission fault on a mapped address (x86 #PF with P=1, ARM permission or domain
    /// fault, `SEGV_ACCERR`).
    Permission,
    /// An x86 general-protection fault: on a user access, most often a non-canonical address.
    GeneralProtection,
    /// An alignment fault or a bus error (`SIGBUS`).
    Bus,
    /// An undefined or illegal instruction.
    Undefined,
    /// Anything else; [`Trap::nr`] says which.
    Other,
}

/// The trap a handler is asked to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trap {
    /// The trap number, which the `fault` handler hands to the fixup in the return register.
    ///
    /// | backend          | `nr`                                                  |
    /// |------------------|-------------------------------------------------------|
    /// | x86_64 kernel    | the vector (14 for #PF, 13 for #GP)                   |
    /// | ARM kernel       | the fault status register (DFSR/IFSR)                 |
    /// | AArch64 kernel   | the exception class (`ESR_EL1.EC`, 0x25 for a data abort) |
    /// | hosted (all)     | the signal number (`SIGSEGV`, `SIGBUS`)               |
    ///
    /// A kernel fills the kernel rows; the hosted backend fills its row itself.
    pub nr: u32,
    /// The fault class.
    pub kind: FaultKind,
    /// The architecture's error word; 0 when there is none.
    ///
    /// | backend          | `error_code`                                                    |
    /// |------------------|-----------------------------------------------------------------|
    /// | x86_64 kernel    | the error code the CPU pushed (`orig_ax` of the frame)          |
    /// | ARM kernel       | the fault status register (DFSR/IFSR)                           |
    /// | AArch64 kernel   | the syndrome (`ESR_EL1`)                                        |
    /// | hosted x86_64    | `REG_ERR` of the `ucontext`: the #PF/#GP error code the kernel saw |
    /// | hosted ARM       | `error_code` of the `ucontext`: the kernel's FSR (0 under qemu-user) |
    /// | hosted AArch64   | the signal's `si_code` (`SEGV_MAPERR` 1, `SEGV_ACCERR` 2, ...)   |
    pub error_code: u64,
    /// The faulting data address when the CPU reports one: CR2 (x86_64 #PF), DFAR (ARM),
    /// `FAR_EL1` (AArch64), `si_addr` (hosted; none for an x86_64 #GP, which reports none).
    pub address: Option<usize>,
}

impl Trap {
    /// A trap of `kind` with number `nr`, no error code and no address.
    pub const fn new(nr: u32, kind: FaultKind) -> Self {
        Trap {
            nr,
            kind,
            error_code: 0,
            address: None,
        }
    }

    /// The same trap with an error code.
    pub const fn with_error_code(mut self, error_code: u64) -> Self {
        self.error_code = error_code;
        self
    }

    /// The same trap with a fault address.
    pub const fn with_address(mut self, address: usize) -> Self {
        self.address = Some(address);
        self
    }
}
