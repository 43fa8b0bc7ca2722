//! Reading the entries of a table in a file, ordering them, and producing the sorted bytes.
//!
//! Self-relative fields are resolved with [`extable_runtime::entry::resolve`] and moved with
//! [`extable_runtime::entry::adjust_for_move_in`], the same functions the runtime sorts with.
//! For Linux layouts, the result is what `scripts/sorttable` computes: its normalise, sort,
//! denormalise in wrapping 32-bit arithmetic equals `adjust_for_move` whenever that does not
//! overflow, and an overflow is refused before anything is written.

use extable_runtime::entry::{adjust_for_move_in, resolve, AddressWidth};

use crate::elf::{Class, Endian};
use crate::layout::{Layout, Order, Shape, Third};

#[cfg(not(target_pointer_width = "64"))]
compile_error!("extable-tool resolves 64-bit addresses through usize: build it for a 64-bit host");

/// The table of one file: where it is and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Table<'d> {
    /// The layout its entries have.
    pub layout: Layout,
    /// The layout's shape for the file's class.
    pub shape: Shape,
    /// File class.
    pub class: Class,
    /// File byte order.
    pub endian: Endian,
    /// Virtual address of the section.
    pub addr: u64,
    /// File offset of the section.
    pub file_offset: u64,
    /// The section's bytes.
    pub bytes: &'d [u8],
}

/// The third field of a decoded entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extra {
    /// None.
    Nothing,
    /// Address of the handler function.
    Handler(u64),
    /// A data word and the fixup type it encodes.
    Data {
        /// The raw word, in host order.
        word: u32,
        /// The fixup type.
        ty: u16,
    },
}

/// One entry with its fields resolved to absolute addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Address of the instruction that may fault.
    pub insn: u64,
    /// Address of the fixup.
    pub fixup: u64,
    /// Handler or data.
    pub extra: Extra,
}

/// A self-relative field that cannot be moved within the table without overflowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow {
    /// Entry index.
    pub index: usize,
    /// Byte offset of the field in the entry.
    pub field: usize,
}

impl<'d> Table<'d> {
    /// The address width the self-relative arithmetic of this file wraps at: ELF32 tables
    /// wrap modulo 2^32 (every target reachable), ELF64 offsets must not overflow.
    #[inline]
    pub fn width(&self) -> AddressWidth {
        match self.class {
            Class::Elf32 => AddressWidth::Bits32,
            Class::Elf64 => AddressWidth::Bits64,
        }
    }

    /// Number of whole entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.bytes.len() / self.shape.size
    }

    /// Whether the table has no whole entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the size is a whole number of entries.
    #[inline]
    pub fn size_is_whole(&self) -> bool {
        self.bytes.len().is_multiple_of(self.shape.size)
    }

    /// The raw bytes of entry `i`.
    #[inline]
    pub fn raw(&self, i: usize) -> &'d [u8] {
        let s = self.shape.size;
        &self.bytes[i * s..(i + 1) * s]
    }

    /// Virtual address of entry `i`.
    #[inline]
    pub fn entry_addr(&self, i: usize) -> u64 {
        self.class
            .mask(self.addr.wrapping_add((i * self.shape.size) as u64))
    }

    #[inline]
    fn rel(&self, raw: &[u8], field: usize) -> i32 {
        self.endian.u32(&raw[field..]) as i32
    }

    /// The absolute address the field at `field` of entry `i` points to.
    #[inline]
    pub fn target(&self, i: usize, field: usize) -> u64 {
        let raw = self.raw(i);
        if self.shape.relative {
            let at = self.entry_addr(i).wrapping_add(field as u64);
            self.class
                .mask(resolve(at as usize, self.rel(raw, field)) as u64)
        } else {
            self.endian.word(self.class, &raw[field..])
        }
    }

    /// The address the self-relative 64-bit field at `field` of entry `i` points to, `None`
    /// when it is 0 (no handler). The sum is not cut to the class's width: in an ELF32 file
    /// a target past 4 GiB is nowhere, not an address 4 GiB lower, and the same handler
    /// moved to any slot has the same target.
    fn wide_target(&self, i: usize, field: usize) -> Option<u64> {
        let v = self.endian.u64(&self.raw(i)[field..]);
        let at = self.addr.wrapping_add((i * self.shape.size + field) as u64);
        (v != 0).then(|| at.wrapping_add(v))
    }

    /// Move the self-relative 64-bit handler of `slot`, an entry moved by `delta` bytes, if
    /// the layout has one: sorttable's `s390_sort_relative_table` adds the entry's offset
    /// and subtracts the new one from a handler that is not 0, in wrapping 64-bit
    /// arithmetic, and leaves 0 alone.
    fn move_wide_handler(&self, slot: &mut [u8], delta: i64) {
        let Third::WideHandler(at) = self.shape.third else {
            return;
        };
        let v = self.endian.u64(&slot[at..]);
        if v != 0 {
            let moved = v.wrapping_sub(delta as u64);
            slot[at..at + 8].copy_from_slice(&self.endian.u64_bytes(moved));
        }
    }

    /// Entry `i`, resolved.
    #[inline]
    pub fn entry(&self, i: usize) -> Entry {
        let [insn, fixup] = self.shape.insn_fixup;
        let extra = match self.shape.third {
            Third::Nothing => Extra::Nothing,
            Third::Handler(at) => Extra::Handler(self.target(i, at)),
            Third::WideHandler(at) => self
                .wide_target(i, at)
                .map_or(Extra::Nothing, Extra::Handler),
            Third::Data(at) => {
                let bytes = &self.raw(i)[at..at + 4];
                Extra::Data {
                    word: self.endian.u32(bytes),
                    ty: crate::arch::fixup_type(self.layout, bytes, self.endian),
                }
            }
        };
        Entry {
            insn: self.target(i, insn),
            fixup: self.target(i, fixup),
            extra,
        }
    }

    /// The sort key of entry `i`, mapped to `u64` so that unsigned comparison is the
    /// layout's order.
    #[inline]
    pub fn key(&self, i: usize) -> u64 {
        let raw = self.raw(i);
        match self.shape.order {
            Order::InsnAddress => self.target(i, self.shape.insn_fixup[0]),
            Order::FirstWord => self.endian.word(self.class, raw),
            Order::SectionRelativeI32 => {
                // sorttable: w(r(loc) + i, loc), then compare as int32_t.
                let offset = (i * self.shape.size + self.shape.insn_fixup[0]) as u32;
                let normalised = self.endian.u32(&raw[self.shape.insn_fixup[0]..]);
                let signed = normalised.wrapping_add(offset) as i32;
                u64::from((signed as u32) ^ 0x8000_0000)
            }
        }
    }

    /// All keys, in table order.
    pub fn keys(&self) -> Vec<u64> {
        (0..self.len()).map(|i| self.key(i)).collect()
    }

    /// The first self-relative field that could not move to every slot of the table without
    /// overflowing an `i32` (moving to the first or the last slot are the extremes), or
    /// without a 64-bit handler becoming 0, which means "no handler" (see
    /// [`Self::wide_handler_could_vanish`]).
    pub fn first_overflow(&self) -> Option<Overflow> {
        let n = self.len();
        let span = (n.saturating_sub(1) * self.shape.size) as i64;
        let fields = self.shape.relative_fields();
        (0..n).find_map(|index| {
            let here = (index * self.shape.size) as i64;
            let raw = self.raw(index);
            let narrow = fields.iter().find_map(|&field| {
                let v = self.rel(raw, field);
                let stuck = adjust_for_move_in(v, -here, self.width()).is_none()
                    || adjust_for_move_in(v, span - here, self.width()).is_none();
                stuck.then_some(Overflow { index, field })
            });
            narrow.or_else(|| self.wide_handler_could_vanish(index))
        })
    }

    /// The 64-bit handler of entry `index`, if it points at the handler field of a slot of
    /// the table: moved to that slot, it would read 0 ("no handler"), as Linux's sorttable
    /// would leave it, and the entry would lose its handler.
    fn wide_handler_could_vanish(&self, index: usize) -> Option<Overflow> {
        let Third::WideHandler(field) = self.shape.third else {
            return None;
        };
        let v = self.endian.u64(&self.raw(index)[field..]) as i64;
        let size = self.shape.size as i64;
        let slot = (v % size == 0).then(|| v / size + index as i64)?;
        (v != 0 && (0..self.len() as i64).contains(&slot)).then_some(Overflow { index, field })
    }

    /// The bytes of the table with entry `order[j]` moved to slot `j`, self-relative fields
    /// adjusted in wrapping 32-bit arithmetic (as `scripts/sorttable` does), other bytes
    /// copied. Equal to [`Self::permuted`] whenever that succeeds.
    pub fn permuted_wrapping(&self, order: &[u32]) -> Vec<u8> {
        match self.shape.size {
            8 => self.gather::<8>(order),
            12 => self.gather::<12>(order),
            16 => self.gather::<16>(order),
            s => unreachable!("no layout has {s}-byte entries"),
        }
    }

    /// [`Self::permuted_wrapping`] for `N`-byte entries (fixed-size copies). The source is
    /// first copied out of the file mapping (sequentially), so the random reads of the
    /// gather hit anonymous memory, and each read is prefetched a few slots ahead.
    fn gather<const N: usize>(&self, order: &[u32]) -> Vec<u8> {
        const AHEAD: usize = 16;
        let fields = self.shape.relative_fields();
        let width = self.width();
        let src = self.bytes[..self.len() * N].to_vec();
        let mut out = vec![0u8; self.len() * N];
        for (j, slot) in out.chunks_exact_mut(N).enumerate() {
            if let Some(&ahead) = order.get(j + AHEAD) {
                prefetch(&src[ahead as usize * N]);
            }
            let i = order[j] as usize;
            let from: &[u8; N] = src[i * N..i * N + N].try_into().expect("whole entry");
            slot.copy_from_slice(from);
            if i == j {
                continue;
            }
            let delta = (j as i64 - i as i64) * N as i64;
            for &field in fields {
                let v = self.rel(slot, field);
                let moved = adjust_for_move_in(v, delta, width)
                    .unwrap_or((v as i64).wrapping_sub(delta) as i32);
                slot[field..field + 4].copy_from_slice(&self.endian.u32_bytes(moved as u32));
            }
            self.move_wide_handler(slot, delta);
        }
        out
    }

    /// The same table with other bytes at the same place (for example its sorted bytes).
    pub fn with_bytes<'b>(&self, bytes: &'b [u8]) -> Table<'b> {
        Table {
            layout: self.layout,
            shape: self.shape,
            class: self.class,
            endian: self.endian,
            addr: self.addr,
            file_offset: self.file_offset,
            bytes,
        }
    }

    /// The bytes of the table with entry `order[j]` moved to slot `j`, its self-relative
    /// fields adjusted and its other bytes copied.
    pub fn permuted(&self, order: &[u32]) -> Result<Vec<u8>, Overflow> {
        let s = self.shape.size;
        let fields = self.shape.relative_fields();
        let mut out = vec![0u8; self.len() * s];
        for (j, slot) in out.chunks_exact_mut(s).enumerate() {
            let i = order[j] as usize;
            let raw = self.raw(i);
            slot.copy_from_slice(raw);
            if i == j {
                continue;
            }
            let delta = (j as i64 - i as i64) * s as i64;
            for &field in fields {
                let v = adjust_for_move_in(self.rel(raw, field), delta, self.width())
                    .ok_or(Overflow { index: i, field })?;
                slot[field..field + 4].copy_from_slice(&self.endian.u32_bytes(v as u32));
            }
            self.move_wide_handler(slot, delta);
        }
        Ok(out)
    }
}

/// Whether `keys` is non-decreasing.
pub fn is_sorted(keys: &[u64]) -> bool {
    keys.windows(2).all(|w| w[0] <= w[1])
}

/// The stable sorting permutation of `keys`: `order[j]` is the index of the entry that
/// belongs in slot `j`.
pub fn sorted_order(keys: &[u64]) -> Vec<u32> {
    let n = keys.len();
    assert!(n <= u32::MAX as usize, "tables are limited to 2^32 entries");
    if is_sorted(keys) {
        return (0..n as u32).collect();
    }
    let min = keys.iter().copied().min().unwrap_or(0);
    let max = keys.iter().copied().max().unwrap_or(0);
    if max - min <= u64::from(u32::MAX) {
        // Pack (key - min, index): sorting the packed words is a stable sort by key.
        let mut packed: Vec<u64> = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| ((k - min) << 32) | i as u64)
            .collect();
        radix_sort_high32(&mut packed);
        packed.into_iter().map(|p| p as u32).collect()
    } else {
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&i| keys[i as usize]);
        order
    }
}

/// LSD radix sort of `v` by its upper 32 bits (three stable passes of 11 bits), which keeps
/// equal keys in their input order.
fn radix_sort_high32(v: &mut Vec<u64>) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    let mut tmp = vec![0u64; v.len()];
    for pass in 0..3 {
        let shift = 32 + pass * BITS;
        let digit = |x: u64| ((x >> shift) as usize) & (BUCKETS - 1);
        let mut counts = vec![0usize; BUCKETS];
        for &x in v.iter() {
            counts[digit(x)] += 1;
        }
        if counts.contains(&v.len()) {
            continue; // every key has the same digit: the pass would not move anything
        }
        let mut next = 0;
        for c in counts.iter_mut() {
            let here = *c;
            *c = next;
            next += here;
        }
        for &x in v.iter() {
            let d = digit(x);
            tmp[counts[d]] = x;
            counts[d] += 1;
        }
        core::mem::swap(v, &mut tmp);
    }
}

/// Hint the CPU to fetch the cache line of `byte` (a no-op where no hint is available).
#[inline(always)]
fn prefetch(byte: &u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing architecturally; SSE is part of the
    // x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            byte as *const u8 as *const i8,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = byte;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_order_is_stable_and_handles_wide_keys() {
        let keys = [5u64, 3, 5, 1, 3];
        assert_eq!(sorted_order(&keys), vec![3, 1, 4, 0, 2]);
        let wide = [u64::MAX, 0, 1 << 40, 7];
        assert_eq!(sorted_order(&wide), vec![1, 3, 2, 0]);
        let many: Vec<u64> = (0..5000u64).map(|i| (i * 7919) % 4099).collect();
        let order = sorted_order(&many);
        let mut expect: Vec<u32> = (0..5000).collect();
        expect.sort_by_key(|&i| many[i as usize]);
        assert_eq!(order, expect);
    }
}
