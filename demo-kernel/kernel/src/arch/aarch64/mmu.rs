//! The AArch64 translation regime of the demo kernel: 4 KiB granule, 39-bit virtual
//! addresses (three levels), as a Linux arm64 kernel with `CONFIG_ARM64_VA_BITS_39`.
//!
//! * TTBR1 (`0xffff_ff80_0000_0000 ..`) holds the kernel: the boot table of entry.S
//!   (Linux's `swapper_pg_dir`) maps physical address `pa` at [`KIMAGE_VOFFSET`]` + pa` with
//!   1 GiB blocks, the PL011 as Device memory and RAM as Normal memory, EL1 only.
//! * TTBR0 (`0 .. TASK_SIZE`) holds the user task's tables, or, when no task is current,
//!   an empty table (Linux's `reserved_pg_dir`): a kernel access to a user address then
//!   takes a translation fault.
//!
//! No ASIDs: switching TTBR0 invalidates this CPU's TLB. User pages are not global.

use core::sync::atomic::AtomicU64;

use crate::mm::{alloc_frame, MapError, Prot};

/// Where physical address 0 appears in the kernel's (TTBR1) half.
pub const KIMAGE_VOFFSET: usize = 0xffff_ff80_0000_0000;
/// Virtual address bits of each half.
pub const VA_BITS: u32 = 39;
/// First address above the user (TTBR0) half.
pub const TASK_SIZE: usize = 1 << VA_BITS;
/// Size of a page.
pub const PAGE_SIZE: usize = 4096;
/// Start of RAM on QEMU `virt`.
pub const RAM_START: usize = 0x4000_0000;
/// RAM the kernel hands out (the harness boots with `-m 128M`).
pub const RAM_SIZE: usize = 128 << 20;

const ENTRIES: usize = 512;

/// Descriptor: valid.
pub const PTE_VALID: u64 = 1 << 0;
/// Descriptor bit 1: a table (levels 1-2) or a page (level 3), not a block.
pub const PTE_TABLE: u64 = 1 << 1;
/// AttrIndx = 1: Normal write-back memory (MAIR attr1).
const PTE_ATTR_NORMAL: u64 = 1 << 2;
/// AP[1]: accessible from EL0.
pub const PTE_USER: u64 = 1 << 6;
/// AP[2]: read-only.
pub const PTE_RDONLY: u64 = 1 << 7;
/// Inner shareable.
const PTE_SHARED: u64 = 3 << 8;
/// Access flag.
const PTE_AF: u64 = 1 << 10;
/// Not global.
const PTE_NG: u64 = 1 << 11;
/// Privileged execute-never.
pub const PTE_PXN: u64 = 1 << 53;
/// Unprivileged execute-never.
pub const PTE_UXN: u64 = 1 << 54;
/// Output address bits.
const PTE_ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// A 4 KiB table, page aligned.
#[repr(C, align(4096))]
struct Table([AtomicU64; ENTRIES]);

/// The empty TTBR0 table of every CPU that runs no user task (Linux's `reserved_pg_dir`).
static RESERVED: Table = Table([const { AtomicU64::new(0) }; ENTRIES]);

extern "C" {
    static aarch64_boot_pgd: u8;
}

/// The physical address of kernel virtual address `va` (linear map or image).
pub fn virt_to_phys(va: usize) -> usize {
    va - KIMAGE_VOFFSET
}

fn phys_to_virt(pa: usize) -> usize {
    pa + KIMAGE_VOFFSET
}

/// The physical address of the kernel's TTBR1 table.
pub fn swapper_phys() -> usize {
    virt_to_phys(core::ptr::addr_of!(aarch64_boot_pgd) as usize)
}

/// The physical address of the empty TTBR0 table.
pub fn reserved_phys() -> usize {
    virt_to_phys(&RESERVED as *const Table as usize)
}

/// The table TTBR0_EL1 points to (physical).
pub fn current_ttbr0() -> usize {
    let v: u64;
    // SAFETY: reads TTBR0_EL1, no side effects.
    unsafe { core::arch::asm!("mrs {}, ttbr0_el1", out(reg) v, options(nomem, nostack)) };
    (v & PTE_ADDR_MASK) as usize
}

/// The table TTBR1_EL1 points to (physical).
pub fn current_ttbr1() -> usize {
    let v: u64;
    // SAFETY: reads TTBR1_EL1, no side effects.
    unsafe { core::arch::asm!("mrs {}, ttbr1_el1", out(reg) v, options(nomem, nostack)) };
    (v & PTE_ADDR_MASK) as usize
}

/// Point TTBR0_EL1 at the table at `pa` and drop this CPU's TLB (Linux's `cpu_switch_mm`
/// without ASIDs).
pub fn switch_ttbr0(pa: usize) {
    // SAFETY: the kernel lives in TTBR1, so no kernel mapping changes; `pa` is a table
    // (the reserved one or a user task's).
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "msr ttbr0_el1, {}",
            "isb",
            "tlbi vmalle1",
            "dsb nsh",
            "isb",
            in(reg) pa as u64,
            options(nostack),
        )
    };
}

/// Per-CPU MMU setup once running at the linked address: the boot identity map leaves
/// TTBR0 for the reserved table, and PSTATE.PAN goes on.
pub fn cpu_init() {
    switch_ttbr0(reserved_phys());
    super::traps::set_pan(true);
}

/// The table entry index of `va` at `level` (1, 2 or 3).
const fn index(va: usize, level: u32) -> usize {
    (va >> (12 + 9 * (3 - level))) & (ENTRIES - 1)
}

/// The descriptor at `idx` of the table at physical `table`.
fn read_desc(table: usize, idx: usize) -> u64 {
    // SAFETY: `table` is a page-table frame reachable through the linear map; in bounds.
    unsafe { core::ptr::read_volatile((phys_to_virt(table) as *const u64).add(idx)) }
}

fn write_desc(table: usize, idx: usize, desc: u64) {
    // SAFETY: as `read_desc`; the tables of one address space are changed by the CPU that
    // runs it, in its fault handler or task setup, never concurrently.
    unsafe { core::ptr::write_volatile((phys_to_virt(table) as *mut u64).add(idx), desc) };
}

/// What a table walk found for an address (Linux's `show_pte`): the descriptors of each
/// level visited, level 1 first; the walk stops at an invalid or block descriptor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    /// Descriptors found, by level (1..=3).
    pub desc: [Option<u64>; 3],
}

/// Walk the tables at physical `root` for `va`.
pub fn walk(root: usize, va: usize) -> Walk {
    let mut w = Walk::default();
    let mut table = root;
    for level in 1..=3u32 {
        let d = read_desc(table, index(va, level));
        w.desc[level as usize - 1] = Some(d);
        if d & PTE_VALID == 0 || (level < 3 && d & PTE_TABLE == 0) {
            break;
        }
        table = (d & PTE_ADDR_MASK) as usize;
    }
    w
}

/// A user address space's level-1 table (physical address of a zeroed frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserPgd(usize);

impl UserPgd {
    /// A new, empty table; `None` when out of frames.
    pub fn new() -> Option<Self> {
        alloc_frame().map(UserPgd)
    }

    /// Its physical address.
    pub fn phys(self) -> usize {
        self.0
    }

    /// The level-3 table for `va`, made (from fresh frames) if missing.
    fn l3_table(self, va: usize) -> Result<usize, MapError> {
        let mut table = self.0;
        for level in 1..=2u32 {
            let idx = index(va, level);
            let d = read_desc(table, idx);
            table = if d & PTE_VALID == 0 {
                let t = alloc_frame().ok_or(MapError::OutOfMemory)?;
                write_desc(table, idx, t as u64 | PTE_TABLE | PTE_VALID);
                t
            } else if d & PTE_TABLE == 0 {
                return Err(MapError::Busy);
            } else {
                (d & PTE_ADDR_MASK) as usize
            };
        }
        Ok(table)
    }

    /// Map the user page at `va` to the frame at `pa`: EL0 access, read-only unless
    /// `prot.write`, UXN unless `prot.exec`, always PXN.
    pub fn map_page(self, va: usize, pa: usize, prot: Prot) -> Result<(), MapError> {
        if va >= TASK_SIZE {
            return Err(MapError::Busy);
        }
        let l3 = self.l3_table(va)?;
        let idx = index(va, 3);
        if read_desc(l3, idx) & PTE_VALID != 0 {
            return Err(MapError::Busy);
        }
        let mut desc = (pa as u64 & PTE_ADDR_MASK)
            | PTE_VALID
            | PTE_TABLE
            | PTE_ATTR_NORMAL
            | PTE_SHARED
            | PTE_AF
            | PTE_NG
            | PTE_PXN;
        if prot.user {
            desc |= PTE_USER;
        }
        if !prot.write {
            desc |= PTE_RDONLY;
        }
        if !prot.exec {
            desc |= PTE_UXN;
        }
        write_desc(l3, idx, desc);
        // SAFETY: barriers only: the new descriptor is visible to the walker (an invalid
        // one is never cached, so no TLB maintenance).
        unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack)) };
        Ok(())
    }

    /// The physical address `va` maps to, if any.
    pub fn translate(self, va: usize) -> Option<usize> {
        let d = walk(self.0, va).desc[2]?;
        (d & PTE_VALID != 0).then_some((d & PTE_ADDR_MASK) as usize | (va & (PAGE_SIZE - 1)))
    }
}
