//! 4-level page tables: the reference table (init_mm, the boot `boot_pml4`), user address
//! spaces that share its kernel half, and the vmalloc area that only the reference maps.

use super::cpu::{invlpg, read_cr3_pa, write_cr3};
use crate::mm::{self, MapError, PageTables, Prot, PAGE_SIZE};

/// Where the kernel image is linked (Linux's `__START_KERNEL_map`).
pub const KERNEL_VMA: usize = 0xffff_ffff_8000_0000;
/// The direct map of physical memory (Linux's `PAGE_OFFSET`).
pub const PAGE_OFFSET: usize = 0xffff_8880_0000_0000;
/// How much of physical memory the boot tables map at [`PAGE_OFFSET`] and [`KERNEL_VMA`].
pub const DIRECT_MAP_SIZE: usize = 1 << 30;
/// The vmalloc area (Linux's `VMALLOC_START` .. `VMALLOC_END`).
pub const VMALLOC_START: usize = 0xffff_c900_0000_0000;
/// End of the vmalloc area.
pub const VMALLOC_END: usize = 0xffff_e900_0000_0000;
/// One past the highest user address (Linux's `TASK_SIZE_MAX`).
pub const TASK_SIZE_MAX: usize = (1 << 47) - PAGE_SIZE;

/// Present.
pub const PTE_P: u64 = 1;
/// Writable.
pub const PTE_RW: u64 = 1 << 1;
/// User accessible.
pub const PTE_US: u64 = 1 << 2;
/// A large page (at the PD or PDPT level).
pub const PTE_PS: u64 = 1 << 7;
/// Cache disable (with write-through: uncached, for device registers).
pub const PTE_PCD: u64 = 1 << 4;
/// Write-through.
pub const PTE_PWT: u64 = 1 << 3;
/// No execute.
pub const PTE_NX: u64 = 1 << 63;
/// The physical-address bits of an entry.
pub const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

extern "C" {
    static mut boot_pml4: [u64; 512];
}

/// Physical address of a kernel-image symbol (Linux's `__pa_symbol`).
pub fn pa_symbol(va: usize) -> usize {
    va - KERNEL_VMA
}

/// Kernel virtual address of physical `pa` in the direct map (Linux's `__va`).
pub fn va(pa: usize) -> usize {
    pa + PAGE_OFFSET
}

/// Physical address of the reference table (init_mm's pgd).
pub fn reference_pa() -> usize {
    pa_symbol(core::ptr::addr_of!(boot_pml4) as usize)
}

/// The table at physical `pa`, through the direct map.
///
/// # Safety
/// `pa` must be a page-table frame, and the caller must not keep another reference to it.
pub unsafe fn table(pa: usize) -> &'static mut [u64; 512] {
    // SAFETY: page-table frames are in the direct map; exclusivity is the caller's.
    unsafe { &mut *(va(pa) as *mut [u64; 512]) }
}

/// Index of `va` in the table at `level` (4 = PML4 .. 1 = PT).
pub fn index(va: usize, level: u32) -> usize {
    (va >> (12 + 9 * (level - 1))) & 511
}

/// Drop the boot identity map so that low addresses, NULL included, fault in kernel mode
/// and belong to user space.
pub fn init() {
    // SAFETY: the reference table is live; nothing runs from the identity map any more.
    unsafe {
        table(reference_pa())[0] = 0;
        write_cr3(reference_pa());
    }
}

/// Walk from `root` to the level-1 entry of `va`, creating missing tables with `inter`
/// permissions. Fails on a large page or when out of frames.
fn walk_create(root: usize, va: usize, inter: u64) -> Result<&'static mut u64, MapError> {
    let mut pa = root;
    for level in [4, 3, 2] {
        // SAFETY: `pa` is a table frame of this address space, used one level at a time.
        let entry = unsafe { &mut table(pa)[index(va, level)] };
        if *entry & PTE_P == 0 {
            let frame = mm::alloc_frame().ok_or(MapError::OutOfMemory)?;
            *entry = frame as u64 | PTE_P | PTE_RW | inter;
        } else if *entry & PTE_PS != 0 {
            return Err(MapError::Busy);
        }
        pa = (*entry & PTE_ADDR) as usize;
    }
    // SAFETY: as above, the level-1 table.
    Ok(unsafe { &mut table(pa)[index(va, 1)] })
}

/// The leaf entry that maps `va` under `root` and its page size, if present.
pub fn walk(root: usize, va: usize) -> Option<(u64, usize)> {
    let mut pa = root;
    for level in [4, 3, 2, 1] {
        // SAFETY: reading a table frame of this address space.
        let entry = unsafe { table(pa)[index(va, level)] };
        if entry & PTE_P == 0 {
            return None;
        }
        let size = 1usize << (12 + 9 * (level - 1));
        if level == 1 || entry & PTE_PS != 0 {
            return Some((entry, size));
        }
        pa = (entry & PTE_ADDR) as usize;
    }
    None
}

/// A user address space: its own PML4 whose kernel half is copied from the reference when it
/// is created (and not updated later, which is what makes vmalloc_fault necessary).
pub struct Space {
    pml4: usize,
}

impl PageTables for Space {
    fn new_user() -> Option<Self> {
        let pml4 = mm::alloc_frame()?;
        // SAFETY: a fresh frame and the reference table are distinct table frames.
        unsafe {
            let reference = table(reference_pa());
            table(pml4)[256..].copy_from_slice(&reference[256..]);
        }
        Some(Space { pml4 })
    }

    fn map(&mut self, va: usize, pa: usize, prot: Prot) -> Result<(), MapError> {
        let user = if prot.user { PTE_US } else { 0 };
        let pte = walk_create(self.pml4, va, user)?;
        if *pte & PTE_P != 0 {
            return Err(MapError::Busy);
        }
        let write = if prot.write { PTE_RW } else { 0 };
        let nx = if prot.exec { 0 } else { PTE_NX };
        *pte = pa as u64 | PTE_P | write | user | nx;
        invlpg(va);
        Ok(())
    }

    fn translate(&self, va: usize) -> Option<usize> {
        walk(self.pml4, va).map(|(e, size)| (e & PTE_ADDR) as usize + (va & (size - 1)))
    }

    fn activate(&self) {
        // SAFETY: the kernel half is the reference's, so the kernel keeps running.
        unsafe { write_cr3(self.pml4) };
    }
}

/// Switch back to the reference table.
pub fn activate_reference() {
    // SAFETY: the reference table maps the whole kernel.
    unsafe { write_cr3(reference_pa()) };
}

/// The active top-level table.
pub fn current_root() -> usize {
    read_cr3_pa()
}

static VMALLOC_NEXT: core::sync::atomic::AtomicUsize =
    core::sync::atomic::AtomicUsize::new(VMALLOC_START);

/// Allocate `pages` zeroed pages and map them in the vmalloc area of the reference table
/// only (Linux's `vmalloc` → `pgd_offset_k`). A guard page follows each area. Returns the
/// address and the first frame.
pub fn vmalloc(pages: usize) -> Option<(usize, usize)> {
    use core::sync::atomic::Ordering;
    let start = VMALLOC_NEXT.fetch_add((pages + 1) * PAGE_SIZE, Ordering::Relaxed);
    let mut first = 0;
    for i in 0..pages {
        let frame = mm::alloc_frame()?;
        if i == 0 {
            first = frame;
        }
        let pte = walk_create(reference_pa(), start + i * PAGE_SIZE, 0).ok()?;
        *pte = frame as u64 | PTE_P | PTE_RW | PTE_NX;
    }
    Some((start, first))
}

/// Where device pages are mapped (Linux's fixmap): the last 1 GiB, whose top-level entry is
/// the kernel image's, so every address space sees them and the vmalloc area stays as the
/// vmalloc_fault scenario expects it.
const FIXMAP_START: usize = 0xffff_ffff_ff00_0000;

static FIXMAP_NEXT: core::sync::atomic::AtomicUsize =
    core::sync::atomic::AtomicUsize::new(FIXMAP_START);

/// Map the device page at physical `pa` uncached in the fixmap area of the reference table
/// (Linux's `set_fixmap_nocache`); returns its address.
pub fn ioremap(pa: usize) -> Option<usize> {
    use core::sync::atomic::Ordering;
    let va = FIXMAP_NEXT.fetch_add(PAGE_SIZE, Ordering::Relaxed);
    let pte = walk_create(reference_pa(), va, 0).ok()?;
    *pte = (pa & !(PAGE_SIZE - 1)) as u64 | PTE_P | PTE_RW | PTE_PCD | PTE_PWT | PTE_NX;
    Some(va + (pa & (PAGE_SIZE - 1)))
}
