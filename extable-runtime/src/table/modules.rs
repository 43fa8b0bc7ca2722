//! Module tables and their read/retire protocol.
//!
//! The protocol is described on [`Registry`].

use core::ops::Range;

use crate::entry::{ExceptionTableEntry, Targets};
use crate::sync::{
    constructor, spin, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

use super::{decode_order, encode_order, lookup, prepare_writable, TableReport};

const STATE_EMPTY: u8 = 0;
const STATE_BUSY: u8 = 1;

/// A loadable module's exception table (Linux's `mod->extable` / `num_exentries`).
///
/// Declared as a `static`, loaded with the module's (relocated, writable) table, then
/// registered with [`register_module`](super::register_module) (or [`Registry::register`]).
pub struct Module {
    name: &'static str,
    entries: AtomicPtr<ExceptionTableEntry>,
    /// The searched index range: `start | end << 32`.
    bounds: AtomicU64,
    state: AtomicU8,
    init_start: AtomicUsize,
    init_end: AtomicUsize,
}

fn pack(range: Range<usize>) -> u64 {
    range.start as u64 | (range.end as u64) << 32
}

fn unpack(bounds: u64) -> Range<usize> {
    (bounds as u32 as usize)..((bounds >> 32) as usize)
}

impl Module {
    constructor! {
        /// An empty module named `name`.
        pub fn new(name: &'static str) -> Self {
            Module {
                name,
                entries: AtomicPtr::new(core::ptr::null_mut()),
                bounds: AtomicU64::new(0),
                state: AtomicU8::new(STATE_EMPTY),
                init_start: AtomicUsize::new(0),
                init_end: AtomicUsize::new(0),
            }
        }
    }

    /// The module's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Attach the module's table and the address range of its init code, sorting the table in
    /// place (modules' tables are sorted after relocation, as in Linux's `module_sort_extable`).
    ///
    /// # Safety
    /// The module must not be registered (never registered, or [`Registry::unregister`] has
    /// returned), and `entries` must stay valid and unchanged until the module is unregistered
    /// or loaded again. Tables of more than `u32::MAX` entries are not supported.
    pub unsafe fn load(
        &self,
        entries: &'static mut [ExceptionTableEntry],
        init: Range<usize>,
    ) -> TableReport {
        self.state.store(STATE_BUSY, Ordering::Relaxed);
        let report = prepare_writable(self.name, entries, false);
        let len = entries.len().min(u32::MAX as usize);
        self.init_start.store(init.start, Ordering::Relaxed);
        self.init_end.store(init.end, Ordering::Relaxed);
        self.bounds.store(pack(0..len), Ordering::Relaxed);
        self.entries.store(entries.as_mut_ptr(), Ordering::Relaxed);
        self.state
            .store(encode_order(report.order), Ordering::Release);
        report
    }

    /// How many entries are searched (after trimming).
    pub fn len(&self) -> usize {
        unpack(self.bounds.load(Ordering::Relaxed)).len()
    }

    /// Whether no entry is searched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Look `addr` up; the caller holds the module's read section (or owns it exclusively).
    fn search(&self, addr: usize) -> Option<&ExceptionTableEntry> {
        let order = decode_order(self.state.load(Ordering::Acquire))?;
        let range = unpack(self.bounds.load(Ordering::Relaxed));
        let ptr = self.entries.load(Ordering::Relaxed);
        // SAFETY: `load` stored a table that stays valid while the module is registered (its
        // contract) and the caller is inside a read section of a slot holding it; trimming
        // only narrows `range` inside `0..len`.
        let table = unsafe { core::slice::from_raw_parts(ptr.add(range.start), range.len()) };
        lookup(table, order, addr)
    }

    /// Stop searching the entries at the ends of the table whose instruction lies in the
    /// module's init code, once that code is freed (Linux's `trim_init_extable`). Entries never
    /// move: a concurrent lookup sees the old or the new range, both inside the table.
    /// Returns how many entries were dropped from the searched range.
    ///
    /// Only the ends are trimmed: in a sorted table the init code's entries form a run at one
    /// end when init code is placed before or after the module's other code, as linkers do.
    ///
    /// # Safety
    /// The table must be live while this runs: the module loaded, and not being loaded again
    /// or unregistered (and its table freed) concurrently, which a module loader's lock for
    /// this module ensures. Lookups may run concurrently.
    pub unsafe fn trim_init(&self) -> usize {
        if decode_order(self.state.load(Ordering::Acquire)).is_none() {
            return 0;
        }
        let init = self.init_start.load(Ordering::Relaxed)..self.init_end.load(Ordering::Relaxed);
        let ptr = self.entries.load(Ordering::Relaxed);
        let inside = |i: usize| {
            // SAFETY: `i` is inside the loaded table (callers pass indices of the current
            // range), which is live during the call (the caller's contract).
            init.contains(&unsafe { &*ptr.add(i) }.insn_addr())
        };
        let mut current = self.bounds.load(Ordering::Relaxed);
        loop {
            let mut range = unpack(current);
            let before = range.len();
            while !range.is_empty() && inside(range.start) {
                range.start += 1;
            }
            while !range.is_empty() && inside(range.end - 1) {
                range.end -= 1;
            }
            match self.bounds.compare_exchange_weak(
                current,
                pack(range.clone()),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return before - range.len(),
                Err(now) => current = now,
            }
        }
    }
}

/// A slot's word: the count of readers inside its section, and the `CLOSED` bit.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// One registered module and the read section guarding it.
struct Slot {
    module: AtomicPtr<Module>,
    /// Readers inside the section, plus [`CLOSED`] while the slot is empty or retiring.
    state: AtomicUsize,
}

impl Slot {
    constructor! {
        fn new() -> Self {
            Slot {
                module: AtomicPtr::new(core::ptr::null_mut()),
                state: AtomicUsize::new(CLOSED),
            }
        }
    }

    /// Enter the read section: the module registered here, or `None` (and no section) when
    /// the slot is empty or being retired.
    fn enter(&self) -> Option<ReadSection<'_>> {
        // An empty slot costs one read: a module registered before this lookup started is
        // seen open (coherence), one registered concurrently may or may not be.
        if self.state.load(Ordering::Relaxed) & CLOSED != 0 {
            return None;
        }
        let previous = self.state.fetch_add(1, Ordering::Acquire);
        let section = ReadSection(self);
        if previous & CLOSED != 0 {
            return None;
        }
        Some(section)
    }

    /// Close the slot and wait until every reader that entered before has left.
    fn close_and_drain(&self) {
        self.state.fetch_or(CLOSED, Ordering::Relaxed);
        while self.state.load(Ordering::Acquire) & !CLOSED != 0 {
            spin();
        }
    }
}

/// Being inside a slot's read section; leaving it on drop.
struct ReadSection<'a>(&'a Slot);

impl ReadSection<'_> {
    fn module(&self) -> &Module {
        let ptr = self.0.module.load(Ordering::Relaxed);
        // SAFETY: the slot was open when this section was entered: `register` stored a
        // `&'static Module` before opening it (the acquire of `enter` pairs with that
        // release), and `unregister` cannot empty it while this section is counted.
        unsafe { &*ptr }
    }
}

impl Drop for ReadSection<'_> {
    fn drop(&mut self) {
        self.0.state.fetch_sub(1, Ordering::Release);
    }
}

/// The registry is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryFull;

/// A set of at most `N` module tables, searched under a read/retire protocol. The runtime's
/// own (`MAX_MODULES` slots) is behind [`register_module`](super::register_module).
///
/// A lookup may run on any CPU at any time (it is on the fault path), while another CPU
/// registers, trims or unregisters a module and then frees or reuses the table's memory. The
/// protocol, in the spirit of RCU:
///
/// * **Read side.** A lookup enters each occupied slot's read section (one atomic add on the
///   slot's word), searches the module's table, runs the caller's code on the entry it found
///   **inside** the section, and leaves it (one atomic sub). Nothing a lookup hands out
///   outlives the section: [`Registry::with_entry`] passes `&ExceptionTableEntry` to a
///   closure, [`Registry::search`] returns a copy of the resolved [`Targets`].
/// * **Retire side.** [`Registry::unregister`] closes the slot (new readers back off without
///   touching the module), waits until every reader that entered before the close has left,
///   and only then empties the slot and returns. After it returns no lookup can see the table:
///   its memory may be freed or reused, and the [`Module`] loaded again.
/// * **Trim.** [`Module::trim_init`] only narrows the searched index range (one atomic word
///   holding both ends), as Linux's `trim_init_extable` does; entries never move, so a
///   concurrent reader sees either range, both inside the live table.
///
/// Writers (register, unregister) are serialised by a lock that lookups never take. The one
/// word a lookup writes is the reader count of the occupied slots it visits; the main table
/// needs no section at all. A lookup that runs while a module is registered or retired may
/// see it or not (as with RCU lists); it never sees a table that is being reused.
pub struct Registry<const N: usize> {
    slots: [Slot; N],
    writer: AtomicBool,
}

/// Holding the registry's writer lock.
struct WriterLock<'a>(&'a AtomicBool);

impl Drop for WriterLock<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl<const N: usize> Registry<N> {
    /// An empty registry.
    #[cfg(not(feature = "loom"))]
    pub const fn new() -> Self {
        Registry {
            slots: [const { Slot::new() }; N],
            writer: AtomicBool::new(false),
        }
    }

    /// An empty registry.
    #[cfg(feature = "loom")]
    pub fn new() -> Self {
        Registry {
            slots: core::array::from_fn(|_| Slot::new()),
            writer: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> WriterLock<'_> {
        while self
            .writer
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spin();
        }
        WriterLock(&self.writer)
    }

    /// Make a loaded module's table searchable.
    pub fn register(&self, module: &'static Module) -> Result<(), RegistryFull> {
        let _lock = self.lock();
        let slot = self
            .slots
            .iter()
            .find(|s| s.module.load(Ordering::Relaxed).is_null())
            .ok_or(RegistryFull)?;
        slot.module
            .store(module as *const Module as *mut Module, Ordering::Relaxed);
        // Open: readers that see the slot open (acquire) see the module and its table.
        slot.state.fetch_and(!CLOSED, Ordering::Release);
        Ok(())
    }

    /// Stop searching a module's table. Returns once no lookup can see it any more: every
    /// lookup that entered its read section before has finished, so the table's memory may
    /// be freed or reused and the module loaded again.
    ///
    /// Must not be called from a lookup (a handler): it would wait for itself.
    pub fn unregister(&self, module: &'static Module) {
        let _lock = self.lock();
        let ptr = module as *const Module as *mut Module;
        for slot in &self.slots {
            if slot.module.load(Ordering::Relaxed) == ptr {
                slot.close_and_drain();
                slot.module.store(core::ptr::null_mut(), Ordering::Relaxed);
            }
        }
    }

    /// Find the entry for `addr` in the registered modules and run `f` on it inside the
    /// module's read section; `None` when no module has an entry for `addr`.
    pub fn with_entry<R>(
        &self,
        addr: usize,
        f: impl FnOnce(&ExceptionTableEntry) -> R,
    ) -> Option<R> {
        for slot in &self.slots {
            let Some(section) = slot.enter() else {
                continue;
            };
            if let Some(entry) = section.module().search(addr) {
                return Some(f(entry));
            }
        }
        None
    }

    /// The resolved targets of the entry for `addr`, copied out of the module's table.
    pub fn search(&self, addr: usize) -> Option<Targets> {
        self.with_entry(addr, ExceptionTableEntry::targets)
    }
}

impl<const N: usize> Default for Registry<N> {
    fn default() -> Self {
        Self::new()
    }
}
