//! Memory management, architecture-neutral: a page-frame allocator, VMAs, and the user-address
//! fault path of Linux's `do_user_addr_fault` / `__do_page_fault` (find_vma, stack expansion,
//! access_error, demand-zero pages counted as minor faults).
//!
//! The arch supplies page-table operations through [`PageTables`] and decodes its fault
//! syndrome into an [`Access`].

use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::arch::{Arch, Current};
use crate::percpu::MAX_CPUS;
use crate::signal::{SigInfo, SEGV_ACCERR, SEGV_MAPERR, SIGSEGV};

/// Size of a page.
pub const PAGE_SIZE: usize = 4096;

/// Round `addr` down to its page.
pub const fn page_down(addr: usize) -> usize {
    addr & !(PAGE_SIZE - 1)
}

/// Page protections asked of [`PageTables::map`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prot {
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Accessible from user mode.
    pub user: bool,
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No frame left for a page-table level.
    OutOfMemory,
    /// The address is already mapped, or covered by a large page.
    Busy,
}

/// One address space's page tables, as the arch builds them.
pub trait PageTables: Sized {
    /// A new address space whose kernel half is the reference table's (Linux's `pgd_alloc`
    /// copying the kernel entries of `init_mm`); `None` when out of frames.
    fn new_user() -> Option<Self>;
    /// Map the page at `va` to the frame at `pa`.
    fn map(&mut self, va: usize, pa: usize, prot: Prot) -> Result<(), MapError>;
    /// The frame `va` is mapped to, if any.
    fn translate(&self, va: usize) -> Option<usize>;
    /// Make this the active address space.
    fn activate(&self);
}

// ---------------------------------------------------------------------------------------
// Page frames.

static NEXT_FRAME: AtomicUsize = AtomicUsize::new(0);
static FRAMES_USED: AtomicUsize = AtomicUsize::new(0);

/// A zeroed page frame from a bump allocator over [`Arch::free_memory`] (frames are never
/// freed: a demo kernel's boot is short). `None` when memory is exhausted.
pub fn alloc_frame() -> Option<usize> {
    let range = Current::free_memory();
    let _ = NEXT_FRAME.compare_exchange(0, range.start, Ordering::Relaxed, Ordering::Relaxed);
    let pa = NEXT_FRAME.fetch_add(PAGE_SIZE, Ordering::Relaxed);
    if pa + PAGE_SIZE > range.end {
        return None;
    }
    FRAMES_USED.fetch_add(1, Ordering::Relaxed);
    // SAFETY: the frame is free memory the arch maps at `phys_to_virt`, owned by nobody yet.
    unsafe { core::ptr::write_bytes(Current::phys_to_virt(pa) as *mut u8, 0, PAGE_SIZE) };
    Some(pa)
}

/// How many frames have been handed out.
pub fn frames_used() -> usize {
    FRAMES_USED.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------
// VMAs.

/// VMA flag: readable.
pub const VM_READ: u32 = 1;
/// VMA flag: writable.
pub const VM_WRITE: u32 = 2;
/// VMA flag: executable.
pub const VM_EXEC: u32 = 4;
/// VMA flag: a stack that grows down on faults just below it.
pub const VM_GROWSDOWN: u32 = 8;

/// A virtual memory area: `[start, end)` with `VM_*` flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    /// First address.
    pub start: usize,
    /// One past the last address.
    pub end: usize,
    /// `VM_*` flags.
    pub flags: u32,
}

impl Vma {
    fn prot(&self) -> Prot {
        Prot {
            write: self.flags & VM_WRITE != 0,
            exec: self.flags & VM_EXEC != 0,
            user: true,
        }
    }
}

/// How many VMAs one address space may have.
pub const MAX_VMAS: usize = 8;

/// What kind of access faulted, decoded by the arch from its error code / syndrome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// A write (x86 W/R, ARM WnR).
    pub write: bool,
    /// An instruction fetch (x86 I/D, ARM prefetch abort).
    pub exec: bool,
    /// The page was present: a protection fault rather than a missing page.
    pub present: bool,
}

/// How a user-address fault was served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// A demand-zero page was mapped (a minor fault).
    Minor,
    /// The stack VMA grew down, then a demand-zero page was mapped.
    StackGrown,
}

/// A user address space: page tables, VMAs and fault counters (Linux's `mm_struct`).
pub struct Mm {
    /// The page tables.
    pub space: <Current as Arch>::Space,
    vmas: [Option<Vma>; MAX_VMAS],
    /// The grows-down VMA may not extend below `stack_top - stack_limit`.
    pub stack_limit: usize,
    /// Demand-zero pages mapped on a fault.
    pub minor_faults: usize,
}

impl Mm {
    /// An address space with no VMAs; `None` when out of frames.
    pub fn new(stack_limit: usize) -> Option<Mm> {
        Some(Mm {
            space: <Current as Arch>::Space::new_user()?,
            vmas: [None; MAX_VMAS],
            stack_limit,
            minor_faults: 0,
        })
    }

    /// Add a VMA (no overlap check: the demo's layouts are fixed). `false` when full.
    pub fn add_vma(&mut self, vma: Vma) -> bool {
        match self.vmas.iter_mut().find(|v| v.is_none()) {
            Some(slot) => {
                *slot = Some(vma);
                true
            }
            None => false,
        }
    }

    /// The VMA that contains `addr` or is the first one above it (Linux's `find_vma`).
    pub fn find_vma(&self, addr: usize) -> Option<usize> {
        self.vmas
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)))
            .filter(|(_, v)| v.end > addr)
            .min_by_key(|(_, v)| v.start)
            .map(|(i, _)| i)
    }

    /// The VMA at index `i`.
    pub fn vma(&self, i: usize) -> Option<Vma> {
        self.vmas.get(i).copied().flatten()
    }

    /// Grow the grows-down VMA `i` to cover `addr`, within the stack limit and without
    /// touching the VMA below (Linux's `expand_stack` / `acct_stack_growth`).
    pub fn expand_stack(&mut self, i: usize, addr: usize) -> bool {
        let Some(mut vma) = self.vma(i) else {
            return false;
        };
        let new_start = page_down(addr);
        if vma.flags & VM_GROWSDOWN == 0 || vma.end - new_start > self.stack_limit {
            return false;
        }
        let below = self
            .vmas
            .iter()
            .flatten()
            .any(|v| v.start < vma.start && v.end > new_start);
        if below {
            return false;
        }
        vma.start = new_start;
        self.vmas[i] = Some(vma);
        true
    }

    /// Map a fresh zeroed page at `addr` with the VMA's protections (`handle_mm_fault` for an
    /// anonymous page).
    fn fault_in_zero_page(&mut self, vma: Vma, addr: usize) -> Result<(), SigInfo> {
        let oom = SigInfo::new(SIGSEGV, SEGV_MAPERR, addr);
        let pa = alloc_frame().ok_or(oom)?;
        self.space
            .map(page_down(addr), pa, vma.prot())
            .map_err(|_| oom)?;
        self.minor_faults += 1;
        MINOR_FAULTS.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Whether `access` is not allowed by `vma` (Linux's `access_error`).
pub fn access_error(access: Access, vma: &Vma) -> bool {
    if access.write {
        return vma.flags & VM_WRITE == 0;
    }
    if access.exec {
        return vma.flags & VM_EXEC == 0;
    }
    // A read of a present page that still faulted is a protection fault.
    access.present || vma.flags & (VM_READ | VM_WRITE | VM_EXEC) == 0
}

// ---------------------------------------------------------------------------------------
// The current address space and the fault path.

/// Each CPU's current user address space (Linux's `current->mm`), indexed by
/// [`Arch::cpu_id`]: a CPU only ever reads or writes its own slot.
static CURRENT_MM: [AtomicPtr<Mm>; MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];

/// This CPU's slot of [`CURRENT_MM`].
fn current_slot() -> &'static AtomicPtr<Mm> {
    &CURRENT_MM[Current::cpu_id()]
}
static MINOR_FAULTS: AtomicUsize = AtomicUsize::new(0);

/// Make `mm` this CPU's current address space (its tables must be active on this CPU) until
/// [`clear_current`].
pub fn set_current(mm: &mut Mm) {
    current_slot().store(mm, Ordering::Release);
}

/// No current user address space on this CPU.
pub fn clear_current() {
    current_slot().store(core::ptr::null_mut(), Ordering::Release);
}

/// Whether a user address space is current on this CPU.
pub fn has_current() -> bool {
    !current_slot().load(Ordering::Acquire).is_null()
}

/// Minor faults served since boot, in every address space.
pub fn minor_faults() -> usize {
    MINOR_FAULTS.load(Ordering::Relaxed)
}

/// Serve a fault on the user address `addr` in the current address space (Linux's
/// `do_user_addr_fault` from `find_vma` on). `Err` carries the signal a user task gets, or
/// that a kernel-mode access turns into an exception-table fixup (or an oops).
pub fn do_user_addr_fault(addr: usize, access: Access) -> Result<Served, SigInfo> {
    let maperr = SigInfo::new(SIGSEGV, SEGV_MAPERR, addr);
    let ptr = current_slot().load(Ordering::Acquire);
    if ptr.is_null() {
        return Err(maperr);
    }
    // SAFETY: `set_current` on this CPU stored a live `&mut Mm` whose owner (task::run or a
    // scenario, on this CPU) is suspended in the access that faulted; no other CPU reads
    // this CPU's slot, so nobody else touches the `Mm` meanwhile.
    let mm = unsafe { &mut *ptr };
    let i = mm.find_vma(addr).ok_or(maperr)?;
    let mut vma = mm.vma(i).ok_or(maperr)?;
    let mut served = Served::Minor;
    if vma.start > addr {
        if vma.flags & VM_GROWSDOWN == 0 || !mm.expand_stack(i, addr) {
            return Err(maperr);
        }
        vma = mm.vma(i).ok_or(maperr)?;
        served = Served::StackGrown;
    }
    if access_error(access, &vma) {
        return Err(SigInfo::new(SIGSEGV, SEGV_ACCERR, addr));
    }
    if mm.space.translate(addr).is_some() {
        // Mapped, allowed, and still faulting: nothing a retry would change.
        return Err(SigInfo::new(SIGSEGV, SEGV_ACCERR, addr));
    }
    mm.fault_in_zero_page(vma, addr)?;
    Ok(served)
}
