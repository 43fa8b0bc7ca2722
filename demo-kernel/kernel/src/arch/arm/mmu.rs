//! The ARMv7 short-descriptor MMU: first-level tables of 4096 entries (1 MiB sections or
//! pointers to second-level tables of 256 small 4 KiB pages), TTBCR = 0 so TTBR0 translates
//! everything, as a classic (non-LPAE) Linux ARM kernel does.
//!
//! Address space (TASK_SIZE split, like Linux's PAGE_OFFSET):
//! * `0 .. TASK_SIZE`: the user task's pages, in the process's own table only;
//! * `0x4000_0000 .. +128 MiB`: RAM, identity-mapped with sections (the kernel's lowmem);
//! * [`VMALLOC_START`] `..` [`VMALLOC_END`]: kernel mappings made after a process's table was
//!   created; they go into the reference table (`init_mm`, [`swapper`]) only, and a process
//!   table gets them copied on first use by `do_translation_fault`;
//! * [`uart::UART_VIRT`]: the PL011, as a device section.
//!
//! Tables are identity-mapped kernel memory: a table's physical address is its virtual one.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, Ordering};

use super::uart;

/// First user-inaccessible address: user mappings live below it.
pub const TASK_SIZE: usize = 0x4000_0000;
/// Size of a small page.
pub const PAGE_SIZE: usize = 4096;
/// Size of a first-level section.
pub const SECTION_SIZE: usize = 1 << SECTION_SHIFT;
/// log2 of [`SECTION_SIZE`].
pub const SECTION_SHIFT: u32 = 20;
/// Start of RAM on QEMU `virt`.
pub const RAM_START: usize = 0x4000_0000;
/// RAM the kernel maps (the harness boots with `-m 128M`).
pub const RAM_SIZE: usize = 128 << 20;
/// Start of the lazily shared kernel area.
pub const VMALLOC_START: usize = 0xe000_0000;
/// End of the lazily shared kernel area.
pub const VMALLOC_END: usize = 0xf000_0000;

const L1_ENTRIES: usize = 4096;
const L2_ENTRIES: usize = 256;

// First-level descriptor fields.
const L1_TYPE_MASK: u32 = 0b11;
const L1_TYPE_FAULT: u32 = 0b00;
const L1_TYPE_TABLE: u32 = 0b01;
const L1_TYPE_SECT: u32 = 0b10;
const L1_TABLE_ADDR_MASK: u32 = !0x3ff;
const SECT_B: u32 = 1 << 2;
const SECT_C: u32 = 1 << 3;
const SECT_XN: u32 = 1 << 4;
const SECT_AP0: u32 = 1 << 10;
const SECT_TEX0: u32 = 1 << 12;
/// Shareable (normal memory seen coherently by every CPU).
const SECT_S: u32 = 1 << 16;

// Second-level (small page) descriptor fields.
const PTE_TYPE_SMALL: u32 = 0b10;
const PTE_XN: u32 = 1 << 0;
const PTE_B: u32 = 1 << 2;
const PTE_C: u32 = 1 << 3;
const PTE_AP_SHIFT: u32 = 4;
const PTE_TEX0: u32 = 1 << 6;
const PTE_APX: u32 = 1 << 9;
/// Shareable.
const PTE_S: u32 = 1 << 10;
const PTE_ADDR_MASK: u32 = !0xfff;

/// Who may access a small page, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageProt {
    /// Readable (and so present) for user mode.
    pub user: bool,
    /// Writable (by whoever may read it).
    pub write: bool,
    /// Executable; otherwise the page is execute-never.
    pub exec: bool,
}

impl PageProt {
    /// Kernel read-write data.
    pub const KERNEL_RW: PageProt = PageProt {
        user: false,
        write: true,
        exec: false,
    };

    /// The small-page descriptor bits (without the address) for this protection, for
    /// normal write-back shareable memory. AP[2:0]: 001 kernel RW, 101 kernel RO, 011 user RW,
    /// 111 user RO (then read-only for the kernel too, as Linux's L_PTE_RDONLY on v7).
    fn bits(self) -> u32 {
        let ap = match (self.user, self.write) {
            (false, true) => 0b001,
            (false, false) => 0b101,
            (true, true) => 0b011,
            (true, false) => 0b111,
        };
        let apx = if ap & 0b100 != 0 { PTE_APX } else { 0 };
        let xn = if self.exec { 0 } else { PTE_XN };
        PTE_TYPE_SMALL | PTE_TEX0 | PTE_C | PTE_B | PTE_S | ((ap & 0b11) << PTE_AP_SHIFT) | apx | xn
    }
}

/// A first-level table (16 KiB aligned, as TTBR0 requires with TTBCR.N = 0).
#[repr(C, align(16384))]
struct L1Table(UnsafeCell<[u32; L1_ENTRIES]>);

/// A second-level table.
#[repr(C, align(1024))]
struct L2Table(UnsafeCell<[u32; L2_ENTRIES]>);

/// Process tables that can exist at once (init_mm's is separate).
const PROCESS_TABLES: usize = crate::percpu::MAX_CPUS;
/// Second-level tables shared by all address spaces.
const L2_TABLES: usize = 96;

struct Tables {
    swapper: L1Table,
    process: [L1Table; PROCESS_TABLES],
    l2: [L2Table; L2_TABLES],
}

// SAFETY: descriptors are only touched through `Pgd`, with volatile accesses. A process
// table (and its second-level tables, handed out by atomic bitmaps) is edited only by the
// CPU whose address space it is, or its fault handlers; the reference table only by the
// boot CPU (built before the other CPUs start; vmalloc mappings by the boot CPU's
// scenarios), and read by every CPU.
unsafe impl Sync for Tables {}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_L1: L1Table = L1Table(UnsafeCell::new([0; L1_ENTRIES]));
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_L2: L2Table = L2Table(UnsafeCell::new([0; L2_ENTRIES]));

static TABLES: Tables = Tables {
    swapper: EMPTY_L1,
    process: [EMPTY_L1; PROCESS_TABLES],
    l2: [EMPTY_L2; L2_TABLES],
};

/// Which process tables are in use (bit per table).
static PROCESS_USED: AtomicU32 = AtomicU32::new(0);
/// Which second-level tables are in use (bit per table).
static L2_USED: [AtomicU32; L2_TABLES.div_ceil(32)] =
    [const { AtomicU32::new(0) }; L2_TABLES.div_ceil(32)];

/// No free table left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfTables;

/// Why a small page could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapFailure {
    /// No second-level table left.
    OutOfTables,
    /// The megabyte is mapped by a section.
    Section,
}

/// Take the lowest clear bit below `limit` in `words`.
fn take_bit(words: &[AtomicU32], limit: usize) -> Option<usize> {
    (0..limit).find(|&i| {
        let (w, bit) = (&words[i / 32], 1u32 << (i % 32));
        w.fetch_or(bit, Ordering::AcqRel) & bit == 0
    })
}

fn alloc_l2() -> Result<*mut u32, OutOfTables> {
    let i = take_bit(&L2_USED, L2_TABLES).ok_or(OutOfTables)?;
    let table = TABLES.l2[i].0.get() as *mut u32;
    for n in 0..L2_ENTRIES {
        // SAFETY: the table was free and is now ours; in bounds.
        unsafe { table.add(n).write_volatile(0) };
    }
    Ok(table)
}

fn free_l2(table: *mut u32) {
    let first = TABLES.l2[0].0.get() as usize;
    let i = (table as usize - first) / core::mem::size_of::<L2Table>();
    L2_USED[i / 32].fetch_and(!(1 << (i % 32)), Ordering::AcqRel);
}

/// Make table writes visible to the walker before they are relied upon.
fn sync_tables() {
    // SAFETY: barriers only.
    unsafe { core::arch::asm!("dsb", "isb", options(nostack)) };
}

/// Drop any TLB entry for `va` (after a valid descriptor changed or went away).
fn flush_tlb_page(va: usize) {
    // SAFETY: TLBIMVA (all ASIDs are 0: every mapping is global) and barriers.
    unsafe {
        core::arch::asm!(
            "dsb",
            "mcr p15, 0, {va}, c8, c7, 1",
            "dsb",
            "isb",
            va = in(reg) va & !(PAGE_SIZE - 1),
            options(nostack),
        )
    };
}

/// Drop the whole TLB (after switching tables).
fn flush_tlb_all() {
    // SAFETY: TLBIALL, BPIALL and barriers.
    unsafe {
        core::arch::asm!(
            "dsb",
            "mcr p15, 0, {z}, c8, c7, 0",
            "mcr p15, 0, {z}, c7, c5, 6",
            "dsb",
            "isb",
            z = in(reg) 0u32,
            options(nostack),
        )
    };
}

/// A first-level table: the reference one or a process's (Linux's `pgd_t *`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pgd(*mut u32);

// SAFETY: see `Tables`.
unsafe impl Send for Pgd {}

/// What a table walk found for an address (for `show_pte`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The first-level descriptor.
    pub pgd: u32,
    /// The second-level descriptor, when the first level points to a table.
    pub pte: Option<u32>,
}

impl Pgd {
    /// The table's (physical = virtual) address.
    pub fn addr(self) -> usize {
        self.0 as usize
    }

    /// The first-level descriptor for `va`.
    pub fn l1(self, va: usize) -> u32 {
        // SAFETY: the index is below 4096 and the table is a live L1 table.
        unsafe { self.0.add(va >> SECTION_SHIFT).read_volatile() }
    }

    fn set_l1(self, va: usize, desc: u32) {
        // SAFETY: as in `l1`; single CPU, no concurrent writer.
        unsafe { self.0.add(va >> SECTION_SHIFT).write_volatile(desc) };
    }

    /// The second-level table `va` goes through, if any.
    fn l2_table(self, va: usize) -> Option<*mut u32> {
        let l1 = self.l1(va);
        (l1 & L1_TYPE_MASK == L1_TYPE_TABLE).then_some((l1 & L1_TABLE_ADDR_MASK) as *mut u32)
    }

    /// Walk the table for `va` (Linux's `show_pte` path).
    pub fn walk(self, va: usize) -> Walk {
        let pgd = self.l1(va);
        let pte = self.l2_table(va).map(|t| {
            // SAFETY: a table descriptor of ours points to a live 256-entry L2 table.
            unsafe { t.add((va >> 12) & 0xff).read_volatile() }
        });
        Walk { pgd, pte }
    }

    /// Whether the first-level entry for `va` is empty (`pmd_none`).
    pub fn l1_none(self, va: usize) -> bool {
        self.l1(va) & L1_TYPE_MASK == L1_TYPE_FAULT
    }

    /// Copy the first-level entry for `va` from `from` (Linux's `copy_pmd`); the entry was
    /// empty here, so no TLB maintenance beyond the barrier is needed.
    pub fn copy_l1_from(self, from: Pgd, va: usize) {
        self.set_l1(va, from.l1(va));
        sync_tables();
    }

    /// Map the 1 MiB section at `va` to `pa`: kernel-only, normal memory or device.
    fn map_section(self, va: usize, pa: usize, device: bool, exec: bool) {
        let mem = if device {
            SECT_B
        } else {
            SECT_TEX0 | SECT_C | SECT_B | SECT_S
        };
        let xn = if exec { 0 } else { SECT_XN };
        let desc = (pa as u32 & !(SECTION_SIZE as u32 - 1)) | SECT_AP0 | mem | xn | L1_TYPE_SECT;
        self.set_l1(va, desc);
    }

    /// Map the small page at `va` to the frame at `pa` with `prot`, creating the
    /// second-level table if needed. An existing mapping is replaced; a megabyte mapped by
    /// a section is refused.
    pub fn map_page(self, va: usize, pa: usize, prot: PageProt) -> Result<(), MapFailure> {
        let table = match self.l2_table(va) {
            Some(t) => t,
            None if !self.l1_none(va) => return Err(MapFailure::Section),
            None => {
                let t = alloc_l2().map_err(|_| MapFailure::OutOfTables)?;
                self.set_l1(va, (t as u32) | L1_TYPE_TABLE);
                t
            }
        };
        let slot = (va >> 12) & 0xff;
        // SAFETY: a live L2 table of ours; the index is below 256.
        let old = unsafe { table.add(slot).read_volatile() };
        // SAFETY: as above.
        unsafe {
            table
                .add(slot)
                .write_volatile((pa as u32 & PTE_ADDR_MASK) | prot.bits())
        };
        if old != 0 {
            flush_tlb_page(va);
        } else {
            sync_tables();
        }
        Ok(())
    }

    /// The frame `va` maps to through a small page, if any.
    pub fn translate(self, va: usize) -> Option<usize> {
        let pte = self.walk(va).pte?;
        (pte & 0b10 != 0).then_some((pte & PTE_ADDR_MASK) as usize | (va & (PAGE_SIZE - 1)))
    }
}

/// The reference table (Linux's `swapper_pg_dir`, `init_mm.pgd`).
pub fn swapper() -> Pgd {
    Pgd(TABLES.swapper.0.get() as *mut u32)
}

/// The table TTBR0 points to (Linux's `cpu_get_pgd`).
pub fn cpu_get_pgd() -> Pgd {
    let ttbr0: u32;
    // SAFETY: reads TTBR0.
    unsafe {
        core::arch::asm!("mrc p15, 0, {}, c2, c0, 0", out(reg) ttbr0, options(nomem, nostack))
    };
    Pgd((ttbr0 & !0x3fff) as *mut u32)
}

/// TTBR0 walk attributes: inner and outer write-back write-allocate (IRGN = 01, RGN = 01),
/// shareable (S), as the walks of every CPU read the same tables.
const TTBR_WALK_ATTRS: u32 = (1 << 6) | (1 << 3) | (1 << 1);

/// Switch TTBR0 to `pgd` (Linux's `cpu_switch_mm`; no ASIDs, so the whole TLB goes).
pub fn switch_mm(pgd: Pgd) {
    // SAFETY: `pgd` is a complete table (the kernel half copied from the reference table),
    // so the code and stack keep their mappings across the switch.
    unsafe {
        core::arch::asm!(
            "dsb",
            "mcr p15, 0, {}, c2, c0, 0",
            "isb",
            in(reg) pgd.addr() as u32 | TTBR_WALK_ATTRS,
            options(nostack),
        )
    };
    flush_tlb_all();
}

/// A new process table (Linux's `pgd_alloc`): no user mappings, the kernel half copied
/// from the reference table as it is now.
pub fn pgd_alloc() -> Result<Pgd, OutOfTables> {
    let i = take_bit(core::slice::from_ref(&PROCESS_USED), PROCESS_TABLES).ok_or(OutOfTables)?;
    let pgd = Pgd(TABLES.process[i].0.get() as *mut u32);
    let kernel = swapper();
    for n in 0..L1_ENTRIES {
        let va = n << SECTION_SHIFT;
        pgd.set_l1(va, if va < TASK_SIZE { 0 } else { kernel.l1(va) });
    }
    sync_tables();
    Ok(pgd)
}

/// Free a process table and its user second-level tables (Linux's `pgd_free` after
/// `free_pgtables`). The frames the pages mapped belong to the caller. The table must not
/// be the current one.
pub fn pgd_free(pgd: Pgd) {
    assert_ne!(pgd, cpu_get_pgd(), "pgd_free of the live table");
    for n in 0..(TASK_SIZE >> SECTION_SHIFT) {
        if let Some(t) = pgd.l2_table(n << SECTION_SHIFT) {
            free_l2(t);
        }
        pgd.set_l1(n << SECTION_SHIFT, 0);
    }
    let first = TABLES.process[0].0.get() as usize;
    let i = (pgd.addr() - first) / core::mem::size_of::<L1Table>();
    PROCESS_USED.fetch_and(!(1 << i), Ordering::AcqRel);
}

/// Map a kernel page in the reference table only (Linux's vmalloc): process tables made
/// before see it through `do_translation_fault`.
pub fn map_kernel_page(va: usize, pa: usize) -> Result<(), MapFailure> {
    debug_assert!((VMALLOC_START..VMALLOC_END).contains(&va));
    swapper().map_page(va, pa, PageProt::KERNEL_RW)
}

/// Build the reference table (RAM identity-mapped, the UART at its kernel address), turn
/// the MMU and the caches on, and move the console to the mapped UART.
pub fn init() {
    extern "C" {
        static __text_start: u8;
        static __text_end: u8;
    }
    let pgd = swapper();
    // Linker-defined symbols: only their addresses are taken.
    let text = core::ptr::addr_of!(__text_start) as usize;
    let text_end = core::ptr::addr_of!(__text_end) as usize;
    let mut va = RAM_START;
    while va < RAM_START + RAM_SIZE {
        // Sections holding kernel text stay executable; the rest of RAM is execute-never.
        let exec = va < text_end && va + SECTION_SIZE > text;
        pgd.map_section(va, va, false, exec);
        va += SECTION_SIZE;
    }
    pgd.map_section(uart::UART_VIRT, uart::UART_PHYS, true, false);
    sync_tables();
    enable();
    uart::set_base(uart::UART_VIRT);
}

/// Turn this CPU's MMU and caches on with the reference table (on the boot CPU once the
/// table is built, on every other CPU as it starts).
pub fn enable() {
    let pgd = swapper();
    // SAFETY: the tables map the running code and data at their physical addresses, so
    // execution continues unchanged once SCTLR.M is set. DACR makes every domain a client
    // (permissions checked), TTBCR = 0 selects TTBR0 for all addresses.
    unsafe {
        core::arch::asm!(
            "mcr p15, 0, {z}, c2, c0, 2",      // TTBCR = 0
            "mcr p15, 0, {dacr}, c3, c0, 0",   // DACR
            "mcr p15, 0, {ttbr}, c2, c0, 0",   // TTBR0
            "mcr p15, 0, {z}, c8, c7, 0",      // TLBIALL
            "mcr p15, 0, {z}, c7, c5, 0",      // ICIALLU
            "dsb",
            "isb",
            "mrc p15, 0, {t}, c1, c0, 0",
            "orr {t}, {t}, {on}",
            "bic {t}, {t}, {off}",
            "mcr p15, 0, {t}, c1, c0, 0",      // SCTLR: M, C, Z, I on; A, TRE, AFE off
            "isb",
            z = in(reg) 0u32,
            dacr = in(reg) 0x5555_5555u32,
            ttbr = in(reg) pgd.addr() as u32 | TTBR_WALK_ATTRS,
            t = out(reg) _,
            on = in(reg) (1u32 << 0) | (1 << 2) | (1 << 11) | (1 << 12),
            off = in(reg) (1u32 << 1) | (1 << 28) | (1 << 29),
            options(nostack),
        )
    };
}
