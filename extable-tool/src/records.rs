//! The fast path of `check` and `sort` for self-relative layouts.
//!
//! The table is read in file order only, in two passes, and its pages are given back to the
//! file once read ([`Pages`]):
//!
//! 1. The scan: the range of the sort keys, the first entry out of order, and whether a
//!    self-relative field could overflow when moved (then the simple path runs instead).
//!    While scanning, the entries of each bucket are counted, the buckets dividing the
//!    range of addresses the code sections span (if a key falls outside it, a second pass
//!    counts them on the keys' real range).
//! 2. If the table is out of order: one pass decodes each entry into a record of the
//!    entry's size (key, fixup and third word, relative to the table) and puts it, and its
//!    index in the file, in its bucket. Each bucket is small and is sorted in cache, by an
//!    LSD radix sort of (key, position) pairs. Both keep file order among equal keys, so the
//!    order is the stable one of [`crate::table::sorted_order`].
//! 3. The walk: the per-entry rules over each bucket in sorted order, with memoised code
//!    section, function and handler lookups. An entry that fails a rule, and every pair of
//!    entries with one key, is handed back ([`Event`]) to the rule functions of `check`,
//!    which word the findings: the findings are those of the simple path.
//! 4. When the sorted table is wanted, each bucket's records are encoded back into entries
//!    where they lie: the record buffer becomes the sorted table's bytes.
//!
//! A table already in order is walked where it lies, without records. Two threads share
//! the chunks of each pass and the buckets, each taking the next when it is free. The hot
//! loops are specialised for the byte order, the class and the layout's shape. Peak memory
//! is the records plus a 2-byte index per entry. Layouts of absolute words, tables of 2^32
//! entries or more, keys that span more than 2^32 and tables with a field that overflows
//! when moved take the simple path.

use core::ops::Range;

use extable_runtime::entry::FIELD_OFFSETS;

use crate::elf::{Class, Endian};
use crate::layout::{Layout, Order, Third};
use crate::symbols::{CodeMemo, FunctionMemo, StartCache, Symbols};
use crate::table::{Entry, Extra, Table};

/// Entries per chunk of a pass over the table, by default.
pub const CHUNK: usize = 1 << 16;

/// The most entries per chunk (an index is kept as a 16-bit offset in its chunk).
pub const MAX_CHUNK: usize = 1 << 16;

/// Tables from this many entries on are split between two threads by default (when the
/// machine has two cores).
pub const PARALLEL_FROM: usize = 1 << 15;

/// How the fast path splits its work. The defaults ([`Tuning::for_len`]) suit large
/// tables; tests use tiny chunks and buckets to reach every seam with small tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Threads: 1, or 2 to share the passes between two cores.
    pub parts: usize,
    /// Entries per chunk of a pass over the table (the unit of work shared between the
    /// threads, and of the pages given back); at most [`MAX_CHUNK`].
    pub chunk: usize,
    /// About 2^`bucket_log` records per bucket of the sort.
    pub bucket_log: u32,
}

impl Tuning {
    /// The defaults for a table of `n` entries: two threads from [`PARALLEL_FROM`] entries
    /// on when the machine has more than one core, [`CHUNK`]-entry chunks, buckets of about
    /// 2048 records (sorted in the core's cache), at most 256 of them.
    pub fn for_len(n: usize) -> Self {
        // Asking for the core count reads the cgroup limits: only for tables large
        // enough to split.
        let two =
            n >= PARALLEL_FROM && std::thread::available_parallelism().is_ok_and(|c| c.get() > 1);
        Tuning {
            parts: if two { 2 } else { 1 },
            chunk: CHUNK,
            bucket_log: 11,
        }
    }
}

const INSN: usize = FIELD_OFFSETS[0];
const FIXUP: usize = FIELD_OFFSETS[1];
const THIRD: usize = FIELD_OFFSETS[2];

/// Something that can take back the memory of bytes already read, such as the pages of a
/// read-only file mapping. The bytes must stay readable with the same contents.
pub trait Pages: Sync {
    /// `bytes` will not be read again soon.
    fn release(&self, bytes: &[u8]);

    /// A copy of `bytes`, a few bytes of the file, read without mapping their pages into
    /// the process where that is cheaper (for a file mapping: a read of the file, where a
    /// page fault would map a whole run of pages that the process then has to unmap).
    fn copy(&self, bytes: &[u8]) -> Vec<u8> {
        bytes.to_vec()
    }
}

/// [`Pages`] that keeps everything (bytes not backed by a file).
#[derive(Clone, Copy, Debug, Default)]
pub struct Keep;

impl Pages for Keep {
    fn release(&self, _: &[u8]) {}
}

/// A record: an entry's words decoded, native-endian: `[key - base, fixup, third]`, where
/// fixup (and a relative third word) are targets relative to the table start modulo 2^32
/// and a data word is kept as its file bytes. A record has the entry's size: 8-byte
/// entries have no third word.
type Record = [u8; 12];

/// Copy the first [`EntryFormat::SIZE`] bytes of `r` to `dst` (of that size), as one move.
#[inline(always)]
fn put<Fmt: EntryFormat>(dst: &mut [u8], r: &Record) {
    if Fmt::SIZE == 12 {
        let dst: &mut [u8; 12] = dst.try_into().expect("a record");
        *dst = *r;
    } else {
        let dst: &mut [u8; 8] = dst.try_into().expect("a record");
        *dst = [r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]];
    }
}

#[inline(always)]
fn record_word(r: &[u8], k: usize) -> u32 {
    u32::from_ne_bytes([r[4 * k], r[4 * k + 1], r[4 * k + 2], r[4 * k + 3]])
}

/// What the third word of an entry is, as a constant of a [`EntryFormat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ThirdKind {
    /// A self-relative handler at [`FIELD_OFFSETS`]`[2]`.
    Handler,
    /// A data word at [`FIELD_OFFSETS`]`[2]`, copied as is.
    Data,
    /// No third word (8-byte entries).
    Nothing,
}

/// The facts about a table's entries that the hot loops are specialised for.
trait EntryFormat {
    /// Big-endian file.
    const BIG: bool;
    /// ELF64 (addresses do not wrap at 2^32; moves must not overflow).
    const WIDE: bool;
    /// Entry size (and record size).
    const SIZE: usize;
    /// The third word.
    const THIRD: ThirdKind;
    /// Ordered by insn address (this project's layout), else by the section-relative insn
    /// offset as an `i32` (Linux's).
    const BY_ADDRESS: bool;
}

/// The [`EntryFormat`] of a byte order, a class and a shape: 0 this project's layout, 1 three
/// relative words ordered like Linux, 2 two relative words and a data word, 3 two relative
/// words.
struct Specialised<const BIG: bool, const WIDE: bool, const SHAPE: u8>;

impl<const BIG: bool, const WIDE: bool, const SHAPE: u8> EntryFormat
    for Specialised<BIG, WIDE, SHAPE>
{
    const BIG: bool = BIG;
    const WIDE: bool = WIDE;
    const SIZE: usize = if SHAPE == 3 { 8 } else { 12 };
    const THIRD: ThirdKind = match SHAPE {
        0 | 1 => ThirdKind::Handler,
        2 => ThirdKind::Data,
        _ => ThirdKind::Nothing,
    };
    const BY_ADDRESS: bool = SHAPE == 0;
}

/// Work specialised for a [`EntryFormat`].
trait Job {
    type Out;
    fn run<Fmt: EntryFormat>(self) -> Self::Out;
}

/// The shape number of a table (see [`Specialised`]), or `None` when the fast path does not take it.
fn shape_of(t: &Table<'_>) -> Option<u8> {
    let s = &t.shape;
    if !s.relative || s.insn_fixup != [INSN, FIXUP] {
        return None;
    }
    let shape = match (s.order, s.third, s.size) {
        (Order::InsnAddress, Third::Handler(THIRD), 12) => 0,
        (Order::SectionRelativeI32, Third::Handler(THIRD), 12) => 1,
        (Order::SectionRelativeI32, Third::Data(THIRD), 12) => 2,
        (Order::SectionRelativeI32, Third::Nothing, 8) => 3,
        _ => return None,
    };
    Some(shape)
}

macro_rules! dispatch {
    ($t:expr, $job:expr, $shape:expr; $(($big:literal, $wide:literal, $s:literal)),*) => {
        match ($t.endian == Endian::Big, $t.class == Class::Elf64, $shape) {
            $(($big, $wide, $s) => $job.run::<Specialised<$big, $wide, $s>>(),)*
            _ => unreachable!("shape_of gives 0 to 3"),
        }
    };
}

/// Run `job` specialised for the form of `t` (whose shape is `shape`).
fn dispatch<J: Job>(t: &Table<'_>, shape: u8, job: J) -> J::Out {
    dispatch!(t, job, shape;
        (false, false, 0), (false, false, 1), (false, false, 2), (false, false, 3),
        (false, true, 0), (false, true, 1), (false, true, 2), (false, true, 3),
        (true, false, 0), (true, false, 1), (true, false, 2), (true, false, 3),
        (true, true, 0), (true, true, 1), (true, true, 2), (true, true, 3))
}

#[inline(always)]
fn decode_u32<Fmt: EntryFormat>(raw: &[u8], at: usize) -> u32 {
    let b = [raw[at], raw[at + 1], raw[at + 2], raw[at + 3]];
    if Fmt::BIG {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

#[inline(always)]
fn encode_u32<Fmt: EntryFormat>(v: u32) -> [u8; 4] {
    if Fmt::BIG {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

#[inline(always)]
fn mask<Fmt: EntryFormat>(v: u64) -> u64 {
    if Fmt::WIDE {
        v
    } else {
        v & 0xffff_ffff
    }
}

/// How entries of one table become records, and records entries and bytes.
#[derive(Clone, Copy, Debug)]
struct Codec<'d> {
    t: Table<'d>,
    /// Keys are kept relative to this: the smallest key, or the bottom of the range the
    /// keys were guessed to lie in.
    base: u64,
}

impl<'d> Codec<'d> {
    /// The entries `range` of the table, one slice per entry.
    #[inline(always)]
    fn entries<Fmt: EntryFormat>(&self, range: Range<usize>) -> core::slice::ChunksExact<'d, u8> {
        self.t.bytes[range.start * Fmt::SIZE..range.end * Fmt::SIZE].chunks_exact(Fmt::SIZE)
    }

    /// The bytes of entry `i`.
    #[inline(always)]
    fn raw<Fmt: EntryFormat>(&self, i: usize) -> &'d [u8] {
        &self.t.bytes[i * Fmt::SIZE..(i + 1) * Fmt::SIZE]
    }

    /// The sort key of entry `i` with bytes `raw`: [`Table::key`].
    #[inline(always)]
    fn key<Fmt: EntryFormat>(&self, i: usize, raw: &[u8]) -> u64 {
        let rel = decode_u32::<Fmt>(raw, INSN);
        let off = (i * Fmt::SIZE + INSN) as u64;
        if Fmt::BY_ADDRESS {
            mask::<Fmt>(
                self.t
                    .addr
                    .wrapping_add(off)
                    .wrapping_add(rel as i32 as i64 as u64),
            )
        } else {
            u64::from(rel.wrapping_add(off as u32) ^ 0x8000_0000)
        }
    }

    /// The target of the self-relative field at `at` of entry `i`, relative to the table
    /// start, modulo 2^32.
    #[inline(always)]
    fn relative_target<Fmt: EntryFormat>(i: usize, raw: &[u8], at: usize) -> u32 {
        ((i * Fmt::SIZE + at) as u32).wrapping_add(decode_u32::<Fmt>(raw, at))
    }

    /// The record of entry `i` (its first [`EntryFormat::SIZE`] bytes).
    #[inline(always)]
    fn record<Fmt: EntryFormat>(&self, i: usize, raw: &[u8]) -> Record {
        let key = self.key::<Fmt>(i, raw).wrapping_sub(self.base) as u32;
        let fixup = Self::relative_target::<Fmt>(i, raw, FIXUP);
        let third = match Fmt::THIRD {
            ThirdKind::Handler => Self::relative_target::<Fmt>(i, raw, THIRD),
            ThirdKind::Data => {
                u32::from_ne_bytes([raw[THIRD], raw[THIRD + 1], raw[THIRD + 2], raw[THIRD + 3]])
            }
            ThirdKind::Nothing => 0,
        };
        let mut r = [0u8; 12];
        r[0..4].copy_from_slice(&key.to_ne_bytes());
        r[4..8].copy_from_slice(&fixup.to_ne_bytes());
        r[8..12].copy_from_slice(&third.to_ne_bytes());
        r
    }

    /// The insn target of a record, relative to the table start, modulo 2^32.
    #[inline(always)]
    fn insn_target<Fmt: EntryFormat>(&self, r: &[u8]) -> u32 {
        let key = self.base.wrapping_add(u64::from(record_word(r, 0)));
        if Fmt::BY_ADDRESS {
            key.wrapping_sub(self.t.addr) as u32
        } else {
            (key as u32) ^ 0x8000_0000
        }
    }

    /// The self-relative value of the field at `at` of slot `j` when it points at `target`
    /// (relative to the table start, modulo 2^32).
    #[inline(always)]
    fn rel_at<Fmt: EntryFormat>(j: usize, at: usize, target: u32) -> u32 {
        target.wrapping_sub((j * Fmt::SIZE + at) as u32)
    }

    /// The address the field at `at` of slot `j` points to when it points at `target`:
    /// [`Table::target`] of the sorted table.
    #[inline(always)]
    fn resolve<Fmt: EntryFormat>(&self, j: usize, at: usize, target: u32) -> u64 {
        let rel = Self::rel_at::<Fmt>(j, at, target);
        let field = self.t.addr.wrapping_add((j * Fmt::SIZE + at) as u64);
        mask::<Fmt>(field.wrapping_add(rel as i32 as i64 as u64))
    }

    /// The insn address of a record in slot `j`.
    #[inline(always)]
    fn insn<Fmt: EntryFormat>(&self, r: &[u8], j: usize) -> u64 {
        if Fmt::BY_ADDRESS {
            self.base.wrapping_add(u64::from(record_word(r, 0)))
        } else {
            self.resolve::<Fmt>(j, INSN, self.insn_target::<Fmt>(r))
        }
    }

    /// The entry a record stands for once it sits in slot `j` of the sorted table, as
    /// [`Table::entry`] of the sorted table reads it. The fast path runs only when no field
    /// overflows when moved, so these are the addresses of the file's entry.
    #[inline(always)]
    fn entry<Fmt: EntryFormat>(&self, r: &[u8], j: usize) -> Entry {
        let insn = self.insn::<Fmt>(r, j);
        let fixup = self.resolve::<Fmt>(j, FIXUP, record_word(r, 1));
        let extra = match Fmt::THIRD {
            ThirdKind::Handler => Extra::Handler(self.resolve::<Fmt>(j, THIRD, record_word(r, 2))),
            ThirdKind::Data => {
                let bytes = record_word(r, 2).to_ne_bytes();
                Extra::Data {
                    word: decode_u32::<Fmt>(&bytes, 0),
                    ty: crate::arch::fixup_type(self.t.layout, &bytes, self.t.endian),
                }
            }
            ThirdKind::Nothing => Extra::Nothing,
        };
        Entry { insn, fixup, extra }
    }

    /// Write the bytes of slot `j` holding record `r` to `out` ([`EntryFormat::SIZE`] bytes).
    #[inline(always)]
    fn encode<Fmt: EntryFormat>(&self, r: &[u8], j: usize, out: &mut [u8]) {
        let insn = Self::rel_at::<Fmt>(j, INSN, self.insn_target::<Fmt>(r));
        out[INSN..INSN + 4].copy_from_slice(&encode_u32::<Fmt>(insn));
        let fixup = Self::rel_at::<Fmt>(j, FIXUP, record_word(r, 1));
        out[FIXUP..FIXUP + 4].copy_from_slice(&encode_u32::<Fmt>(fixup));
        match Fmt::THIRD {
            ThirdKind::Handler => {
                let v = Self::rel_at::<Fmt>(j, THIRD, record_word(r, 2));
                out[THIRD..THIRD + 4].copy_from_slice(&encode_u32::<Fmt>(v));
            }
            ThirdKind::Data => out[THIRD..THIRD + 4].copy_from_slice(&r[8..12]),
            ThirdKind::Nothing => {}
        }
    }
}

/// What one pass over (part of) the table found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scan {
    kmin: u64,
    kmax: u64,
    /// The first `i` whose key is greater than the key of `i + 1`.
    descent: Option<usize>,
    /// Every relative field's value plus its entry's offset (the value it would have in
    /// slot 0): smallest and largest. In the last slot, a field holds `span` less.
    vmin: i64,
    vmax: i64,
    /// The keys of the first and the last entry.
    first: u64,
    last: u64,
    /// Whether a key fell outside the guessed range (see [`Guess`]).
    outside: bool,
}

impl Scan {
    /// Whether a self-relative field cannot move to every slot of an ELF64 table of `n`
    /// entries of `size` bytes without overflowing an `i32` (the extremes are slot 0 and
    /// the last slot).
    fn stuck(&self, n: usize, size: usize, wide: bool) -> bool {
        let span = (n.saturating_sub(1) * size) as i64;
        wide && n > 0 && (self.vmax > i64::from(i32::MAX) || self.vmin - span < i64::from(i32::MIN))
    }

    /// The scan of two adjacent ranges, `self` first, `next` starting at entry `at`.
    fn then(self, next: Scan, at: usize) -> Scan {
        let descent = self
            .descent
            .or((self.last > next.first).then(|| at - 1))
            .or(next.descent);
        Scan {
            kmin: self.kmin.min(next.kmin),
            kmax: self.kmax.max(next.kmax),
            descent,
            vmin: self.vmin.min(next.vmin),
            vmax: self.vmax.max(next.vmax),
            first: self.first,
            last: next.last,
            outside: self.outside || next.outside,
        }
    }
}

/// Where the keys should lie if the table is sound (from the code sections), so that the
/// buckets can be counted while scanning: keys in `base..base + span`, `span <= 2^32`.
#[derive(Clone, Copy, Debug)]
struct Guess {
    base: u64,
    span: u64,
    digit: Digit,
    buckets: usize,
}

impl Guess {
    /// The guess for a table of `n` entries whose insn addresses lie in `code` (the range
    /// spanned by the executable sections), or `None` when the keys of such addresses do
    /// not form one range of at most 2^32.
    fn new<Fmt: EntryFormat>(
        c: &Codec<'_>,
        code: Option<(u64, u64)>,
        n: usize,
        bucket_log: u32,
    ) -> Option<Self> {
        let (lo, hi) = code?;
        let (base, span) = if Fmt::BY_ADDRESS {
            (lo, hi.checked_sub(lo)?)
        } else {
            // key = (insn - table) as i32, shifted to unsigned.
            let from = i128::from(lo) - i128::from(c.t.addr);
            let to = i128::from(hi) - i128::from(c.t.addr);
            let half = 1i128 << 31;
            if from < -half || to > half || from >= to {
                return None;
            }
            ((from + half) as u64, (to - from) as u64)
        };
        if span == 0 || span > 1 << 32 {
            return None;
        }
        let bits = 64 - (span - 1).leading_zeros();
        let top = top_bits(n, bits, bucket_log);
        Some(Guess {
            base,
            span,
            digit: Digit { shift: bits - top },
            buckets: 1 << top,
        })
    }
}

/// Scan the non-empty entries `range` of a table of `n` entries; with a guess, count the
/// entries of each bucket.
#[inline(never)]
fn scan<Fmt: EntryFormat>(
    c: &Codec<'_>,
    range: Range<usize>,
    n: usize,
    guess: Option<Guess>,
) -> (Scan, Vec<usize>) {
    let fields: &[usize] = match Fmt::THIRD {
        ThirdKind::Handler => &FIELD_OFFSETS,
        _ => &FIELD_OFFSETS[..2],
    };
    let (mut kmin, mut kmax) = (u64::MAX, 0u64);
    let (mut rmin, mut rmax) = (i32::MAX, i32::MIN);
    let first = c.key::<Fmt>(range.start, c.raw::<Fmt>(range.start));
    let mut prev = first;
    let mut descent = None;
    let mut outside = false;
    let mut counts = [0u32; 256];
    for (k, raw) in c.entries::<Fmt>(range.clone()).enumerate() {
        let i = range.start + k;
        let key = c.key::<Fmt>(i, raw);
        kmin = kmin.min(key);
        kmax = kmax.max(key);
        if descent.is_none() && key < prev {
            descent = Some(i - 1);
        }
        prev = key;
        if let Some(g) = guess {
            let off = key.wrapping_sub(g.base);
            outside |= off >= g.span;
            counts[g.digit.of(off.min(g.span - 1) as u32) & 255] += 1;
        }
    }
    if Fmt::WIDE {
        (rmin, rmax) =
            relative_extremes::<Fmt>(&c.t.bytes[range.start * Fmt::SIZE..range.end * Fmt::SIZE]);
    }
    // A field's value plus its entry's offset: bounded by the extremes of the values and
    // of the offsets; exact only when the bounds come near an overflow.
    let span = (n.saturating_sub(1) * Fmt::SIZE) as i64;
    let mut vmin = i64::from(rmin) + (range.start * Fmt::SIZE) as i64;
    let mut vmax = i64::from(rmax) + ((range.end - 1) * Fmt::SIZE) as i64;
    if Fmt::WIDE && (vmax > i64::from(i32::MAX) || vmin - span < i64::from(i32::MIN)) {
        (vmin, vmax) = (i64::MAX, i64::MIN);
        for (k, raw) in c.entries::<Fmt>(range.clone()).enumerate() {
            let here = ((range.start + k) * Fmt::SIZE) as i64;
            for &f in fields {
                let v = i64::from(decode_u32::<Fmt>(raw, f) as i32) + here;
                vmin = vmin.min(v);
                vmax = vmax.max(v);
            }
        }
    }
    let scan = Scan {
        kmin,
        kmax,
        descent,
        vmin,
        vmax,
        first,
        last: prev,
        outside,
    };
    let buckets = guess.map_or(0, |g| g.buckets);
    (
        scan,
        counts[..buckets].iter().map(|&k| k as usize).collect(),
    )
}

/// The smallest and the largest value of the self-relative fields of the entries `all` (a
/// pass over bytes just read, so in cache, that compiles to vector instructions).
fn relative_extremes<Fmt: EntryFormat>(all: &[u8]) -> (i32, i32) {
    let widen = |(lo, hi): (i32, i32), w: &[u8]| {
        let v = decode_u32::<Fmt>(w, 0) as i32;
        (lo.min(v), hi.max(v))
    };
    let start = (i32::MAX, i32::MIN);
    match Fmt::THIRD {
        // Every word is relative.
        ThirdKind::Handler => all
            .as_chunks::<4>()
            .0
            .iter()
            .fold(start, |acc, w| widen(acc, w)),
        _ => all
            .chunks_exact(Fmt::SIZE)
            .fold(start, |acc, e| widen(widen(acc, &e[INSN..]), &e[FIXUP..])),
    }
}

/// Something the rule functions of `check` must look at, with the index in the file and
/// the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// This entry fails a per-entry rule.
    Entry(usize, Entry),
    /// The second entry directly follows the first in sorted order and has its key.
    Duplicate((usize, Entry), (usize, Entry)),
}

/// The per-entry rules of `check` over entries in sorted order, as yes/no answers.
struct Walk<'s, 'i, 'd> {
    symbols: &'s Symbols<'i, 'd>,
    layout: Layout,
    insn_code: CodeMemo,
    fixup_code: CodeMemo,
    funcs: FunctionMemo,
    starts: StartCache,
    /// The last data word and whether its type is known.
    data: Option<(u32, bool)>,
    /// The record, index and slot before.
    prev: Option<(Record, usize, usize)>,
    moved: usize,
    events: Vec<Event>,
}

impl<'s, 'i, 'd> Walk<'s, 'i, 'd> {
    fn new(symbols: &'s Symbols<'i, 'd>, layout: Layout) -> Self {
        Walk {
            symbols,
            layout,
            insn_code: CodeMemo::default(),
            fixup_code: CodeMemo::default(),
            funcs: FunctionMemo::default(),
            starts: StartCache::default(),
            data: None,
            prev: None,
            moved: 0,
            events: Vec::new(),
        }
    }

    /// Visit record `r` of entry `i`, in slot `j` (slots in ascending order).
    #[inline(always)]
    fn step<Fmt: EntryFormat>(&mut self, c: &Codec<'_>, r: &[u8], i: usize, j: usize) {
        let mut rec = [0u8; 12];
        rec[..Fmt::SIZE].copy_from_slice(&r[..Fmt::SIZE]);
        self.moved += usize::from(i != j);
        if !self.clean::<Fmt>(c, &rec, j) {
            self.events.push(Event::Entry(i, c.entry::<Fmt>(&rec, j)));
        }
        if let Some((p, pi, pj)) = self.prev {
            if record_word(&p, 0) == record_word(&rec, 0) {
                let first = (pi, c.entry::<Fmt>(&p, pj));
                self.events
                    .push(Event::Duplicate(first, (i, c.entry::<Fmt>(&rec, j))));
            }
        }
        self.prev = Some((rec, i, j));
    }

    /// Whether `check_entry` finds nothing to say about the entry of record `r` in slot
    /// `j`: both addresses in code, a known handler or type, and the fixup in the insn's
    /// function or in a fixup section.
    #[inline(always)]
    fn clean<Fmt: EntryFormat>(&mut self, c: &Codec<'_>, r: &Record, j: usize) -> bool {
        let s = self.symbols;
        let insn = c.insn::<Fmt>(r, j);
        if self.insn_code.lookup(s, insn).is_none() {
            return false;
        }
        let fixup = c.resolve::<Fmt>(j, FIXUP, record_word(r, 1));
        let Some(fixup_section) = self.fixup_code.lookup(s, fixup) else {
            return false;
        };
        let third = match Fmt::THIRD {
            ThirdKind::Handler => {
                let h = c.resolve::<Fmt>(j, THIRD, record_word(r, 2));
                self.starts.is_function_start(s, h)
            }
            ThirdKind::Data => self.known_data(c, record_word(r, 2)),
            ThirdKind::Nothing => true,
        };
        if !third {
            return false;
        }
        match self.funcs.containing(s, insn) {
            None => true,
            Some((start, end)) => (start..end).contains(&fixup) || fixup_section,
        }
    }

    /// Whether the type of a data word (its file bytes, as a native word) is known.
    #[inline(always)]
    fn known_data(&mut self, c: &Codec<'_>, raw: u32) -> bool {
        match self.data {
            Some((w, known)) if w == raw => known,
            _ => {
                let ty = crate::arch::fixup_type(self.layout, &raw.to_ne_bytes(), c.t.endian);
                let known = crate::arch::fixup_type_name(self.layout, ty).is_some();
                self.data = Some((raw, known));
                known
            }
        }
    }

    /// What the walk found since the last call.
    fn take(&mut self) -> Walked {
        Walked {
            moved: core::mem::take(&mut self.moved),
            events: core::mem::take(&mut self.events),
        }
    }
}

/// What a walk over some slots found.
#[derive(Default)]
struct Walked {
    moved: usize,
    events: Vec<Event>,
}

impl Walked {
    /// The walks of consecutive slot ranges, joined.
    fn join(parts: Vec<Walked>) -> Walked {
        let mut all = Walked::default();
        for p in parts {
            all.moved += p.moved;
            all.events.extend(p.events);
        }
        all
    }
}

/// What the fast path found.
#[derive(Debug)]
pub struct Fast {
    /// The first entry whose key is greater than the next one's.
    pub descent: Option<usize>,
    /// Entries that change slots.
    pub moved: usize,
    /// What the rule functions must look at, in sorted order.
    pub events: Vec<Event>,
    /// The sorted table's bytes, when asked for and the table is out of order.
    pub sorted: Option<Vec<u8>>,
}

/// Run the fast path over `t`, or `None` when the table must take the simple path. With
/// `keep`, the sorted table's bytes are kept.
pub fn run(
    t: &Table<'_>,
    symbols: &Symbols<'_, '_>,
    pages: &dyn Pages,
    tuning: Tuning,
    keep: bool,
) -> Option<Fast> {
    let shape = shape_of(t)?;
    if t.len() > u32::MAX as usize || !t.size_is_whole() {
        return None;
    }
    let job = RunJob {
        t,
        symbols,
        pages,
        two: tuning.parts > 1,
        chunk: tuning.chunk.clamp(1, MAX_CHUNK),
        bucket_log: tuning.bucket_log,
        keep,
    };
    dispatch(t, shape, job)
}

struct RunJob<'a, 's, 'i, 'd> {
    t: &'a Table<'d>,
    symbols: &'s Symbols<'i, 'd>,
    pages: &'a dyn Pages,
    two: bool,
    chunk: usize,
    bucket_log: u32,
    keep: bool,
}

/// Run `a` here and `b` on another thread when `two`, else both here; `b`'s panic is
/// re-raised.
fn both<A: Send, B: Send>(
    two: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !two {
        return (a(), b());
    }
    std::thread::scope(|s| {
        let hb = s.spawn(b);
        let ra = a();
        match hb.join() {
            Ok(rb) => (ra, rb),
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

/// Do `work` on every item, on one thread or on two that take the next item as they
/// become free (so a busier core does less); each worker keeps its own state from `init`.
/// The results come back in item order.
fn share<T: Send, S, R: Send>(
    two: bool,
    items: Vec<T>,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, T) -> R + Sync,
) -> Vec<R> {
    let count = items.len();
    let queue = std::sync::Mutex::new(items.into_iter().enumerate());
    let worker = || {
        let mut state = init();
        let mut done = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some((k, item)) = next else { break };
            done.push((k, work(&mut state, item)));
        }
        done
    };
    let (a, b) = both(two && count > 1, worker, worker);
    let mut slots: Vec<Option<R>> = (0..count).map(|_| None).collect();
    for (k, r) in a.into_iter().chain(b) {
        slots[k] = Some(r);
    }
    slots.into_iter().flatten().collect()
}

impl<'d> Job for RunJob<'_, '_, '_, 'd> {
    type Out = Option<Fast>;

    fn run<Fmt: EntryFormat>(self) -> Self::Out {
        let n = self.t.len();
        let mut codec = Codec {
            t: *self.t,
            base: 0,
        };
        let c = &codec;
        let guess = Guess::new::<Fmt>(c, self.symbols.code_range(), n, self.bucket_log);
        let scans = share(
            self.two,
            self.chunks(n),
            || (),
            |_, r| (r.start, scan::<Fmt>(c, r, n, guess)),
        );
        let mut counts = Vec::with_capacity(scans.len());
        let mut whole: Option<Scan> = None;
        for (start, (s, k)) in scans {
            whole = Some(match whole {
                Some(w) => w.then(s, start),
                None => s,
            });
            counts.push(k);
        }
        let Some(s) = whole else {
            return Some(Fast {
                descent: None,
                moved: 0,
                events: Vec::new(),
                sorted: None,
            });
        };
        if s.stuck(n, Fmt::SIZE, Fmt::WIDE) || s.kmax - s.kmin > u64::from(u32::MAX) {
            return None;
        }
        codec.base = s.kmin;
        let (walked, sorted) = match s.descent {
            None => (self.walk_in_place::<Fmt>(&codec), None),
            Some(_) => {
                // The counts by the guess serve when every key was inside it and the keys
                // spread over a good part of it (else most would share a few buckets).
                let spread = (s.kmax - s.kmin).saturating_mul(16);
                let buckets = match guess {
                    Some(g) if !s.outside && spread >= g.span => {
                        codec.base = g.base;
                        Some((g.digit, counts))
                    }
                    _ => None,
                };
                let bits = 64 - (s.kmax - s.kmin).leading_zeros();
                let (walked, buf) = self.sort::<Fmt>(&codec, bits, buckets)?;
                (walked, self.keep.then_some(buf))
            }
        };
        Some(Fast {
            descent: s.descent,
            moved: walked.moved,
            events: walked.events,
            sorted,
        })
    }
}

impl RunJob<'_, '_, '_, '_> {
    /// The chunks of `0..n`.
    fn chunks(&self, n: usize) -> Vec<Range<usize>> {
        (0..n.div_ceil(self.chunk))
            .map(|k| k * self.chunk..((k + 1) * self.chunk).min(n))
            .collect()
    }

    /// Walk a table that is already in order.
    fn walk_in_place<Fmt: EntryFormat>(&self, c: &Codec<'_>) -> Walked {
        let parts = share(
            self.two,
            self.chunks(c.t.len()),
            || Walk::new(self.symbols, c.t.layout),
            |walk, range| {
                let walked = walk_chunk::<Fmt>(c, walk, range.clone());
                self.pages
                    .release(&c.t.bytes[range.start * Fmt::SIZE..range.end * Fmt::SIZE]);
                walked
            },
        );
        Walked::join(parts)
    }

    /// Decode, bucket and sort the records of the whole table, walking each bucket once
    /// sorted; the buffer ends holding the sorted table's bytes when `keep`. `None` if the
    /// table changed between passes.
    /// `buckets`: the bucket of a key and the count of each bucket in each chunk, when the
    /// scan counted them; else they are counted for keys of `bits` bits.
    fn sort<Fmt: EntryFormat>(
        &self,
        c: &Codec<'_>,
        bits: u32,
        buckets: Option<(Digit, Vec<Vec<usize>>)>,
    ) -> Option<(Walked, Vec<u8>)> {
        let n = c.t.len();
        let size = Fmt::SIZE;
        let ranges = self.chunks(n);
        let (digit, counts) = buckets.unwrap_or_else(|| {
            let top = top_bits(n, bits, self.bucket_log);
            let digit = Digit { shift: bits - top };
            let counts = share(
                self.two,
                ranges.clone(),
                || (),
                |_, range| histogram::<Fmt>(c, range, digit, 1 << top),
            );
            (digit, counts)
        });
        let buckets = counts.first().map_or(1, Vec::len);
        let mut buf = vec![0u8; n * size];
        // Each index as an offset in its chunk (chunks have at most 2^16 entries).
        let mut index = vec![0u16; n];
        // Bucket d holds the records of chunk 0, then of chunk 1..., each in file order:
        // the parts of each chunk, by bucket, of the records and of their indices.
        let mut parts: Vec<Vec<Part<'_>>> =
            ranges.iter().map(|_| Vec::with_capacity(buckets)).collect();
        let mut starts = Vec::with_capacity(buckets + 1);
        let (mut recs, mut idx) = (&mut buf[..], &mut index[..]);
        let mut at = 0;
        for d in 0..buckets {
            starts.push(at);
            for (k, counts) in counts.iter().enumerate() {
                let (r, r_rest) = recs.split_at_mut(counts[d] * size);
                let (x, x_rest) = idx.split_at_mut(counts[d]);
                parts[k].push((r, x));
                (recs, idx) = (r_rest, x_rest);
                at += counts[d];
            }
        }
        starts.push(at);
        let items: Vec<_> = ranges.into_iter().zip(parts).collect();
        let filled = share(
            self.two,
            items,
            || (),
            |_, (range, parts)| {
                let filled = scatter::<Fmt>(c, range.clone(), digit, parts);
                self.pages
                    .release(&c.t.bytes[range.start * size..range.end * size]);
                filled
            },
        );
        if filled.iter().any(Option::is_none) {
            return None;
        }
        let mut items = Vec::with_capacity(buckets);
        let (mut recs, mut idx) = (&mut buf[..], &index[..]);
        for d in 0..buckets {
            let m = starts[d + 1] - starts[d];
            let (r, r_rest) = recs.split_at_mut(m * size);
            recs = r_rest;
            let mut parts = Vec::with_capacity(counts.len());
            for (counts, range) in counts.iter().zip(self.chunks(n)) {
                let (x, x_rest) = idx.split_at(counts[d]);
                parts.push((range.start, x));
                idx = x_rest;
            }
            items.push(Bucket {
                base: starts[d],
                recs: r,
                index: parts,
            });
        }
        let walked = share(
            self.two,
            items,
            || BucketWork {
                walk: Walk::new(self.symbols, c.t.layout),
                scratch: Scratch::default(),
                index: Vec::new(),
                out: Vec::new(),
                bits: digit.shift,
                keep: self.keep,
            },
            |work, bucket| work.run::<Fmt>(c, bucket),
        );
        Some((Walked::join(walked), buf))
    }
}

/// The records of one chunk in one bucket, and their indices as offsets in the chunk.
type Part<'b> = (&'b mut [u8], &'b mut [u16]);

/// The bucket of a key (relative to the smallest): its top bits.
#[derive(Clone, Copy, Debug)]
struct Digit {
    shift: u32,
}

impl Digit {
    #[inline(always)]
    fn of(self, key: u32) -> usize {
        key.checked_shr(self.shift).unwrap_or(0) as usize
    }
}

/// Walk the entries `range` of a table that is already in order.
#[inline(never)]
fn walk_chunk<Fmt: EntryFormat>(
    c: &Codec<'_>,
    walk: &mut Walk<'_, '_, '_>,
    range: Range<usize>,
) -> Walked {
    walk.prev = range.start.checked_sub(1).map(|before| {
        (
            c.record::<Fmt>(before, c.raw::<Fmt>(before)),
            before,
            before,
        )
    });
    for (k, raw) in c.entries::<Fmt>(range.clone()).enumerate() {
        let i = range.start + k;
        let r = c.record::<Fmt>(i, raw);
        walk.step::<Fmt>(c, &r[..Fmt::SIZE], i, i);
    }
    walk.take()
}

/// How many entries of `range` fall in each bucket.
#[inline(never)]
fn histogram<Fmt: EntryFormat>(
    c: &Codec<'_>,
    range: Range<usize>,
    digit: Digit,
    buckets: usize,
) -> Vec<usize> {
    let mut counts = vec![0usize; buckets];
    for (k, raw) in c.entries::<Fmt>(range.clone()).enumerate() {
        let key = c.key::<Fmt>(range.start + k, raw).wrapping_sub(c.base) as u32;
        // A key past the scanned extremes means the table changed since the scan (a
        // concurrent truncation reads as zeros): count it in the last bucket; the scatter
        // then finds its bucket missing and the sort falls back.
        counts[digit.of(key).min(buckets - 1)] += 1;
    }
    counts
}

/// Decode the entries `range` and put each record, and its index, in its bucket's part.
/// `None` when a part is full or missing (the table changed since the histogram).
#[inline(never)]
fn scatter<Fmt: EntryFormat>(
    c: &Codec<'_>,
    range: Range<usize>,
    digit: Digit,
    mut parts: Vec<Part<'_>>,
) -> Option<()> {
    let size = Fmt::SIZE;
    let mut fill = vec![0usize; parts.len()];
    for (k, raw) in c.entries::<Fmt>(range.clone()).enumerate() {
        let i = range.start + k;
        let r = c.record::<Fmt>(i, raw);
        let d = digit.of(record_word(&r, 0));
        let (recs, idx) = parts.get_mut(d)?;
        let f = *fill.get(d)?;
        put::<Fmt>(recs.get_mut(f * size..(f + 1) * size)?, &r);
        *idx.get_mut(f)? = (i - range.start) as u16;
        fill[d] += 1;
    }
    Some(())
}

/// One bucket of records: its first slot, its records and their indices in the file (by
/// chunk: the chunk's first index and the offsets in it).
struct Bucket<'b> {
    base: usize,
    recs: &'b mut [u8],
    index: Vec<(usize, &'b [u16])>,
}

/// What a thread keeps while it sorts and walks buckets.
struct BucketWork<'s, 'i, 'd> {
    walk: Walk<'s, 'i, 'd>,
    scratch: Scratch,
    /// The bucket's indices, copied.
    index: Vec<u32>,
    out: Vec<u8>,
    /// The low bits of the keys the bucket sort orders by.
    bits: u32,
    keep: bool,
}

impl BucketWork<'_, '_, '_> {
    /// Sort `b`, walk it, and when asked encode the sorted entries over its records.
    #[inline(never)]
    fn run<Fmt: EntryFormat>(&mut self, c: &Codec<'_>, b: Bucket<'_>) -> Walked {
        let size = Fmt::SIZE;
        // The walk reads the indices in sorted order: bring them into the cache in order.
        self.index.clear();
        for &(start, offsets) in &b.index {
            self.index
                .extend(offsets.iter().map(|&o| (start + usize::from(o)) as u32));
        }
        let m = self.index.len();
        let order = sort_bucket::<Fmt>(b.recs, m, self.bits, &mut self.scratch);
        // Buckets differ in their keys' top bits: no duplicate across two.
        self.walk.prev = None;
        self.out.clear();
        if self.keep {
            self.out.resize(b.recs.len(), 0);
        }
        for (r, &k) in order.iter().enumerate() {
            let k = k as usize;
            let rec = &b.recs[k * size..(k + 1) * size];
            self.walk
                .step::<Fmt>(c, rec, self.index[k] as usize, b.base + r);
            if self.keep {
                c.encode::<Fmt>(rec, b.base + r, &mut self.out[r * size..(r + 1) * size]);
            }
        }
        if self.keep {
            b.recs.copy_from_slice(&self.out);
        }
        self.walk.take()
    }
}

/// How many top bits of the (`bits`-bit) keys pick the bucket of a record: about
/// 2^`bucket_log` records per bucket, at most 256 buckets (few pages written at once while
/// scattering).
fn top_bits(n: usize, bits: u32, bucket_log: u32) -> u32 {
    let log = usize::BITS - 1 - n.max(1).leading_zeros();
    log.saturating_sub(bucket_log).min(8).min(bits)
}

/// Reusable memory of the bucket sort.
#[derive(Default)]
struct Scratch {
    pairs: Vec<u64>,
    pairs_tmp: Vec<u64>,
    order: Vec<u32>,
    counts: Vec<u32>,
}

/// The positions of the `m` records in `recs` in stable order of their keys, which agree
/// above their low `bits` bits.
///
/// The sort moves (key, position) pairs, smaller than records. One counting pass on the top
/// bits of the keys puts each pair near its place and an insertion pass finishes; when the
/// keys bunch so that the insertion pass would move too much, an LSD radix sort takes over.
/// A few pairs get an unstable sort (the pairs are unique: that is the stable order).
#[inline(never)]
fn sort_bucket<'s, Fmt: EntryFormat>(
    recs: &[u8],
    m: usize,
    bits: u32,
    scratch: &'s mut Scratch,
) -> &'s [u32] {
    let Scratch {
        pairs,
        pairs_tmp,
        order,
        counts,
    } = scratch;
    // About two buckets per pair (at most 2^16).
    let width = (usize::BITS - m.leading_zeros()).min(bits).min(16);
    let shift = 32 + bits - width;
    let top = |x: u64| ((x >> shift) & ((1 << width) - 1)) as usize;
    counts.clear();
    counts.resize(1 << width, 0);
    pairs.clear();
    let mut sorted = true;
    let mut last = 0u32;
    for (k, r) in recs.chunks_exact(Fmt::SIZE).enumerate() {
        let key = record_word(r, 0);
        sorted &= key >= last;
        last = key;
        let x = (u64::from(key) << 32) | k as u64;
        pairs.push(x);
        counts[top(x)] += 1;
    }
    order.clear();
    if sorted {
        order.extend(0..m as u32);
        return order;
    }
    if m <= 32 {
        pairs.sort_unstable();
        order.extend(pairs.iter().map(|&x| x as u32));
        return order;
    }
    let mut next = 0;
    for c in counts.iter_mut() {
        let k = *c;
        *c = next;
        next += k;
    }
    pairs_tmp.clear();
    pairs_tmp.resize(m, 0);
    for &x in pairs.iter() {
        let d = top(x);
        pairs_tmp[counts[d] as usize] = x;
        counts[d] += 1;
    }
    if !insertion_sort_within(pairs_tmp, 8 * m) {
        radix_sort_pairs(pairs, pairs_tmp, counts, bits);
    }
    order.extend(pairs_tmp.iter().map(|&x| x as u32));
    order
}

/// Insertion-sort `v`, unless that takes more than `budget` moves: then `false`, with `v`
/// in some order.
fn insertion_sort_within(v: &mut [u64], budget: usize) -> bool {
    let mut moves = 0;
    for k in 1..v.len() {
        let x = v[k];
        if v[k - 1] <= x {
            continue;
        }
        let mut at = k;
        while at > 0 && v[at - 1] > x {
            v[at] = v[at - 1];
            at -= 1;
        }
        v[at] = x;
        moves += k - at;
        if moves > budget {
            return false;
        }
    }
    true
}

/// Sort the (key, position) `pairs` by their keys' low `bits` bits into `out` (of the same
/// length), stably: an LSD radix sort of 11-bit digits at most.
fn radix_sort_pairs(pairs: &mut Vec<u64>, out: &mut Vec<u64>, counts: &mut Vec<u32>, bits: u32) {
    let passes = bits.div_ceil(11).max(1);
    let width = bits.div_ceil(passes);
    let mask = (1u64 << width) - 1;
    for p in 0..passes {
        let digit = |x: u64| ((x >> (32 + p * width)) & mask) as usize;
        counts.clear();
        counts.resize(1 << width, 0);
        for &x in pairs.iter() {
            counts[digit(x)] += 1;
        }
        let mut next = 0;
        for c in counts.iter_mut() {
            let k = *c;
            *c = next;
            next += k;
        }
        for &x in pairs.iter() {
            let d = digit(x);
            out[counts[d] as usize] = x;
            counts[d] += 1;
        }
        core::mem::swap(pairs, out);
    }
    // The last pass's output is in `pairs`.
    core::mem::swap(pairs, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::{Class, Endian};

    fn table(layout: Layout, class: Class, endian: Endian, bytes: &[u8]) -> Table<'_> {
        Table {
            layout,
            shape: layout.shape(class),
            class,
            endian,
            addr: 0xffff_ffff_8000_0000 & class.mask(u64::MAX),
            file_offset: 0,
            bytes,
        }
    }

    /// Words near the ends of the `i32` range, and some small ones.
    fn words(n: usize, seed: u64) -> Vec<i32> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let near = (x >> 40) as i32 & 0xfff;
                match x % 4 {
                    0 => i32::MAX - near,
                    1 => i32::MIN + near,
                    _ => (x >> 20) as i32 & 0xffff,
                }
            })
            .collect()
    }

    fn encode(ws: &[i32], endian: Endian) -> Vec<u8> {
        ws.iter()
            .flat_map(|&w| endian.u32_bytes(w as u32))
            .collect()
    }

    /// The scan finds a field that cannot move exactly when `Table::first_overflow` does,
    /// with chunks of every size (the bounds of a chunk are exact only near an overflow).
    #[test]
    fn overflow_found_by_the_scan_is_the_simple_one() {
        for (layout, endian) in [
            (Layout::Extable, Endian::Little),
            (Layout::LinuxX86, Endian::Big),
            (Layout::LinuxPowerpc, Endian::Little),
        ] {
            for n in [1usize, 2, 3, 7, 40] {
                for seed in 0..64 {
                    let size = layout.shape(Class::Elf64).size;
                    let mut ws = words(n * size / 4, seed);
                    // Mostly small values: overflow only now and then.
                    if seed % 2 == 0 {
                        for w in ws.iter_mut().skip(1) {
                            *w &= 0xff;
                        }
                    }
                    let bytes = encode(&ws, endian);
                    let t = table(layout, Class::Elf64, endian, &bytes);
                    let c = Codec { t, base: 0 };
                    let expect = t.first_overflow().is_some();
                    for chunk in [1, 2, 5, n] {
                        let whole = (0..n.div_ceil(chunk))
                            .map(|k| {
                                let r = k * chunk..((k + 1) * chunk).min(n);
                                let s = match (layout, endian) {
                                    (Layout::Extable, _) => {
                                        scan::<Specialised<false, true, 0>>(&c, r.clone(), n, None)
                                    }
                                    (Layout::LinuxX86, _) => {
                                        scan::<Specialised<true, true, 2>>(&c, r.clone(), n, None)
                                    }
                                    _ => {
                                        scan::<Specialised<false, true, 3>>(&c, r.clone(), n, None)
                                    }
                                };
                                (r.start, s.0)
                            })
                            .reduce(|(a, sa), (b, sb)| (a, sa.then(sb, b)))
                            .unwrap()
                            .1;
                        assert_eq!(
                            whole.stuck(n, size, true),
                            expect,
                            "{layout} n={n} seed={seed} chunk={chunk}"
                        );
                    }
                }
            }
        }
    }

    /// The bucket sort is the stable sort by key, whatever the keys' spread: uniform,
    /// bunched (the LSD fallback), equal, in order, reversed.
    #[test]
    fn bucket_sort_is_the_stable_sort_by_key() {
        let mut scratch = Scratch::default();
        let mut x = 5u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for bits in [1u32, 5, 11, 16, 20, 32] {
            for m in [0usize, 1, 2, 31, 33, 100, 1000, 5000] {
                for spread in 0..6 {
                    let low = |v: u64| (v as u32) & (u32::MAX >> (32 - bits));
                    let keys: Vec<u32> = (0..m)
                        .map(|k| match spread {
                            0 => low(next()),
                            1 => low(next()) & 0xf,            // bunched low
                            2 => (low(next()) | 0xfff) ^ 0x7f, // bunched high bits set
                            3 => 7 & low(u64::MAX),            // all equal
                            4 => low(k as u64),                // in order
                            _ => low((m - k) as u64),          // reversed
                        })
                        .collect();
                    let recs: Vec<u8> = keys
                        .iter()
                        .flat_map(|k| {
                            let mut r = [0u8; 12];
                            r[..4].copy_from_slice(&k.to_ne_bytes());
                            r
                        })
                        .collect();
                    let got =
                        sort_bucket::<Specialised<false, true, 0>>(&recs, m, bits, &mut scratch)
                            .to_vec();
                    let mut expect: Vec<u32> = (0..m as u32).collect();
                    expect.sort_by_key(|&k| keys[k as usize]);
                    assert_eq!(got, expect, "bits={bits} m={m} spread={spread}");
                }
            }
        }
    }

    #[test]
    fn relative_extremes_read_only_relative_words_in_the_file_order() {
        let ws = [5, -7, 1_000_000, 3, i32::MIN + 1, 9];
        let le = encode(&ws, Endian::Little);
        let be = encode(&ws, Endian::Big);
        // Three relative words per entry: all of them.
        assert_eq!(
            relative_extremes::<Specialised<false, true, 0>>(&le),
            (i32::MIN + 1, 1_000_000)
        );
        assert_eq!(
            relative_extremes::<Specialised<true, true, 1>>(&be),
            (i32::MIN + 1, 1_000_000)
        );
        // A data word third: words 0, 1, 3, 4 only.
        assert_eq!(
            relative_extremes::<Specialised<false, true, 2>>(&le),
            (i32::MIN + 1, 5)
        );
        // Two words per entry: all of them.
        assert_eq!(
            relative_extremes::<Specialised<true, true, 3>>(&be),
            (i32::MIN + 1, 1_000_000)
        );
    }
}
