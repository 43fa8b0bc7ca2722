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
    /// The architecture's trap number: the x86 vector (14 for #PF, 13 for #GP), the ARM fault
    /// status (FSR), the AArch64 exception class, or the signal number in the hosted backend.
    /// The `fault` handler hands this value to the fixup in the return register.
    pub nr: u32,
    /// The fault class.
    pub kind: FaultKind,
    /// The error code the CPU pushed (x86), the syndrome (ESR/FSR) on ARM, or the signal's
    /// `si_code` in the hosted backend; 0 when there is none.
    pub error_code: u64,
    /// The faulting data address when the CPU reports one (CR2, DFAR, FAR_EL1, `si_addr`).
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
