//! The fast path of `check` and `sort` for self-relative layouts.
//!
//! The table is read in file order only, and its pages are given back to the file once
//! read for the last time ([`Pages`]):
//!
//! 1. The scan: the range of the sort keys, the first entry out of order, and whether a
//!    self-relative field could overflow when moved (then the simple path runs instead).
//! 2. A table already in order is walked where it lies (step 4), without records.
//! 3. Otherwise: one pass counts the entries of each bucket (the top bits of the key), and
//!    a second decodes each entry into a record of the entry's size (key, fixup and third
//!    word, relative to the table) and puts it, with its index in the file, in the next
//!    slot of its bucket. Each bucket is small and is sorted in cache by an LSD radix sort
//!    of (key, position) pairs, which keeps file order among equal keys: the order of
//!    [`crate::table::sorted_order`].
//! 4. The walk: the per-entry rules over the entries in sorted order, with memoised code
//!    section, function and handler lookups. An entry that fails a rule, and every pair of
//!    entries with one key, is handed back ([`Event`]) to the rule functions of `check`,
//!    which word the findings: the findings are those of the simple path.
//! 5. When the sorted table is wanted, each bucket's records are encoded back into entries
//!    where they lie: the record buffer becomes the sorted table's bytes.
//!
//! The hot loops are specialised for the byte order, the class and the layout's shape.
//! Peak memory is the records plus a 4-byte index per entry. Layouts of absolute words,
//! tables of 2^32 entries or more, keys that span more than 2^32 and tables with a field
//! that overflows when moved take the simple path.

use core::ops::Range;

use extable_runtime::entry::FIELD_OFFSETS;

use crate::elf::{Class, Endian};
use crate::layout::{Layout, Order, Third};
use crate::symbols::{CodeMemo, FunctionMemo, StartCache, Symbols};
use crate::table::{Entry, Extra, Table};

/// Entries per chunk of a pass over the table (the unit of the pages given back), by
/// default.
pub const CHUNK: usize = 1 << 16;

/// Tables from this many entries on give the pages of the whole file back before the fast
/// path runs: the records are then the peak memory, not the records plus the table.
pub const LARGE: usize = 1 << 15;

/// How the fast path divides its work. The default suits every table; tests use tiny
/// chunks and buckets to reach every seam with small tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Entries per chunk of a pass over the table (the unit of the pages given back).
    pub chunk: usize,
    /// About 2^`bucket_log` records per bucket of the sort.
    pub bucket_log: u32,
}

impl Default for Tuning {
    /// [`CHUNK`]-entry chunks, buckets of about 2048 records (sorted in the core's cache),
    /// at most 256 of them.
    fn default() -> Self {
        Tuning {
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
pub trait Pages {
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

/// What the first pass over the table found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scan {
    /// The smallest and the largest key.
    kmin: u64,
    kmax: u64,
    /// The first `i` whose key is greater than the key of `i + 1`.
    descent: Option<usize>,
    /// Every relative field's value plus its entry's offset (the value it would have in
    /// slot 0): smallest and largest. In the last slot, a field holds `span` less.
    vmin: i64,
    vmax: i64,
}

impl Scan {
    /// Whether a self-relative field cannot move to every slot of an ELF64 table of `n`
    /// entries of `size` bytes without overflowing an `i32` (the extremes are slot 0 and
    /// the last slot).
    fn stuck(&self, n: usize, size: usize, wide: bool) -> bool {
        let span = (n.saturating_sub(1) * size) as i64;
        wide && n > 0 && (self.vmax > i64::from(i32::MAX) || self.vmin - span < i64::from(i32::MIN))
    }
}

/// Scan the `n` entries of a table (`n > 0`): the range of the keys, the first descent, and
/// the extremes of the relative fields moved to slot 0.
#[inline(never)]
fn scan<Fmt: EntryFormat>(c: &Codec<'_>, n: usize) -> Scan {
    let fields: &[usize] = match Fmt::THIRD {
        ThirdKind::Handler => &FIELD_OFFSETS,
        _ => &FIELD_OFFSETS[..2],
    };
    let (mut kmin, mut kmax) = (u64::MAX, 0u64);
    let mut prev = c.key::<Fmt>(0, c.raw::<Fmt>(0));
    let mut descent = None;
    for (i, raw) in c.entries::<Fmt>(0..n).enumerate() {
        let key = c.key::<Fmt>(i, raw);
        kmin = kmin.min(key);
        kmax = kmax.max(key);
        if descent.is_none() && key < prev {
            descent = Some(i - 1);
        }
        prev = key;
    }
    // A field's value plus its entry's offset: bounded by the extremes of the values and
    // of the offsets; computed exactly only when the bounds come near an overflow.
    let (rmin, rmax) = if Fmt::WIDE {
        relative_extremes::<Fmt>(c.t.bytes)
    } else {
        (i32::MAX, i32::MIN)
    };
    let span = (n.saturating_sub(1) * Fmt::SIZE) as i64;
    let mut vmin = i64::from(rmin);
    let mut vmax = i64::from(rmax) + span;
    if Fmt::WIDE && (vmax > i64::from(i32::MAX) || vmin - span < i64::from(i32::MIN)) {
        (vmin, vmax) = (i64::MAX, i64::MIN);
        for (i, raw) in c.entries::<Fmt>(0..n).enumerate() {
            let here = (i * Fmt::SIZE) as i64;
            for &f in fields {
                let v = i64::from(decode_u32::<Fmt>(raw, f) as i32) + here;
                vmin = vmin.min(v);
                vmax = vmax.max(v);
            }
        }
    }
    Scan {
        kmin,
        kmax,
        descent,
        vmin,
        vmax,
    }
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
        chunk: tuning.chunk.max(1),
        bucket_log: tuning.bucket_log,
        keep,
    };
    dispatch(t, shape, job)
}

/// [`run`] once the table's form is known.
struct RunJob<'a, 's, 'i, 'd> {
    t: &'a Table<'d>,
    symbols: &'s Symbols<'i, 'd>,
    pages: &'a dyn Pages,
    chunk: usize,
    bucket_log: u32,
    keep: bool,
}

impl<'d> Job for RunJob<'_, '_, '_, 'd> {
    type Out = Option<Fast>;

    fn run<Fmt: EntryFormat>(self) -> Self::Out {
        let n = self.t.len();
        if n == 0 {
            return Some(Fast {
                descent: None,
                moved: 0,
                events: Vec::new(),
                sorted: None,
            });
        }
        let mut codec = Codec {
            t: *self.t,
            base: 0,
        };
        let s = scan::<Fmt>(&codec, n);
        if s.stuck(n, Fmt::SIZE, Fmt::WIDE) || s.kmax - s.kmin > u64::from(u32::MAX) {
            return None;
        }
        codec.base = s.kmin;
        let mut walk = Walk::new(self.symbols, self.t.layout);
        let sorted = match s.descent {
            None => {
                self.walk_in_place::<Fmt>(&codec, &mut walk);
                None
            }
            Some(_) => {
                let bits = 64 - (s.kmax - s.kmin).leading_zeros();
                let bytes = self.sort::<Fmt>(&codec, bits, &mut walk)?;
                self.keep.then_some(bytes)
            }
        };
        Some(Fast {
            descent: s.descent,
            moved: walk.moved,
            events: walk.events,
            sorted,
        })
    }
}

impl RunJob<'_, '_, '_, '_> {
    /// The chunks of `0..n`.
    fn chunks(&self, n: usize) -> impl Iterator<Item = Range<usize>> + '_ {
        (0..n.div_ceil(self.chunk)).map(move |k| k * self.chunk..((k + 1) * self.chunk).min(n))
    }

    /// Give back the pages of the entries `range`, read for the last time.
    fn release<Fmt: EntryFormat>(&self, range: Range<usize>) {
        self.pages
            .release(&self.t.bytes[range.start * Fmt::SIZE..range.end * Fmt::SIZE]);
    }

    /// Walk a table that is already in order, where it lies.
    fn walk_in_place<Fmt: EntryFormat>(&self, c: &Codec<'_>, walk: &mut Walk<'_, '_, '_>) {
        for range in self.chunks(c.t.len()) {
            for (i, raw) in c.entries::<Fmt>(range.clone()).enumerate() {
                let i = range.start + i;
                let r = c.record::<Fmt>(i, raw);
                walk.step::<Fmt>(c, &r[..Fmt::SIZE], i, i);
            }
            self.release::<Fmt>(range);
        }
    }

    /// Decode the records of the whole table into buckets by the top bits of their
    /// `bits`-bit keys, then sort each bucket and walk it; returns the buffer of records,
    /// which holds the sorted table's bytes when `keep`. `None` if the table changed
    /// between passes.
    fn sort<Fmt: EntryFormat>(
        &self,
        c: &Codec<'_>,
        bits: u32,
        walk: &mut Walk<'_, '_, '_>,
    ) -> Option<Vec<u8>> {
        let n = c.t.len();
        let size = Fmt::SIZE;
        let top = top_bits(n, bits, self.bucket_log);
        let digit = Digit { shift: bits - top };
        let counts = histogram::<Fmt>(c, digit, 1 << top);
        // Bucket d: slots starts[d]..starts[d + 1].
        let starts: Vec<usize> = core::iter::once(0)
            .chain(counts.iter().scan(0, |at, &k| {
                *at += k;
                Some(*at)
            }))
            .collect();
        let mut records = vec![0u8; n * size];
        let mut index = vec![0u32; n];
        let mut fill = starts.clone();
        for range in self.chunks(n) {
            scatter::<Fmt>(
                c,
                range.clone(),
                digit,
                &starts,
                &mut fill,
                &mut records,
                &mut index,
            )?;
            self.release::<Fmt>(range);
        }
        let mut scratch = Scratch::default();
        let mut encoded = Vec::new();
        let mut bucket_index = Vec::new();
        for bucket in starts.windows(2) {
            let slots = bucket[0]..bucket[1];
            let records = &mut records[slots.start * size..slots.end * size];
            let order = sort_bucket::<Fmt>(records, digit.shift, &mut scratch);
            // The walk reads the indices in sorted order: bring them into the cache in
            // file order first (a copy the size of a bucket).
            bucket_index.clear();
            bucket_index.extend_from_slice(&index[slots.clone()]);
            if self.keep {
                encoded.clear();
                encoded.resize(records.len(), 0);
            }
            for (r, &k) in order.iter().enumerate() {
                let k = k as usize;
                let record = &records[k * size..(k + 1) * size];
                let slot = slots.start + r;
                walk.step::<Fmt>(c, record, bucket_index[k] as usize, slot);
                if self.keep {
                    c.encode::<Fmt>(record, slot, &mut encoded[r * size..(r + 1) * size]);
                }
            }
            if self.keep {
                records.copy_from_slice(&encoded);
            }
        }
        Some(records)
    }
}

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

/// How many entries of the table fall in each of `buckets` buckets.
#[inline(never)]
fn histogram<Fmt: EntryFormat>(c: &Codec<'_>, digit: Digit, buckets: usize) -> Vec<usize> {
    let mut counts = vec![0usize; buckets];
    for (i, raw) in c.entries::<Fmt>(0..c.t.len()).enumerate() {
        let key = c.key::<Fmt>(i, raw).wrapping_sub(c.base) as u32;
        // A key past the scanned extremes means the table changed since the scan (a
        // concurrent truncation reads as zeros): count it in the last bucket; the scatter
        // then finds a bucket overfull and the sort falls back.
        counts[digit.of(key).min(buckets - 1)] += 1;
    }
    counts
}

/// Decode the entries `range` and put each record, and its index, in the next free slot
/// of its bucket (`fill[d]`, below `starts[d + 1]`). `None` when a bucket is full or
/// missing (the table changed since the histogram).
#[inline(never)]
fn scatter<Fmt: EntryFormat>(
    c: &Codec<'_>,
    range: Range<usize>,
    digit: Digit,
    starts: &[usize],
    fill: &mut [usize],
    records: &mut [u8],
    index: &mut [u32],
) -> Option<()> {
    let size = Fmt::SIZE;
    for (i, raw) in c.entries::<Fmt>(range.clone()).enumerate() {
        let i = range.start + i;
        let r = c.record::<Fmt>(i, raw);
        let d = digit.of(record_word(&r, 0));
        let slot = *fill.get(d)?;
        if slot >= *starts.get(d + 1)? {
            return None;
        }
        put::<Fmt>(&mut records[slot * size..(slot + 1) * size], &r);
        index[slot] = i as u32;
        fill[d] += 1;
    }
    Some(())
}

/// How many top bits of the (`bits`-bit) keys pick the bucket of a record: about
/// 2^`bucket_log` records per bucket (sorted in the core's cache), at most 256 buckets
/// (few pages written at once while scattering).
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

/// The positions of the records in `records` in stable order of their keys, which agree
/// above their low `bits` bits: an LSD radix sort of (key, position) pairs, smaller than
/// records.
#[inline(never)]
fn sort_bucket<'s, Fmt: EntryFormat>(
    records: &[u8],
    bits: u32,
    scratch: &'s mut Scratch,
) -> &'s [u32] {
    let Scratch {
        pairs,
        pairs_tmp,
        order,
        counts,
    } = scratch;
    pairs.clear();
    pairs.extend(
        records
            .chunks_exact(Fmt::SIZE)
            .enumerate()
            .map(|(k, r)| (u64::from(record_word(r, 0)) << 32) | k as u64),
    );
    pairs_tmp.clear();
    pairs_tmp.resize(pairs.len(), 0);
    radix_sort_pairs(pairs, pairs_tmp, counts, bits);
    order.clear();
    order.extend(pairs.iter().map(|&x| x as u32));
    order
}

/// Sort the (key, position) `pairs` by their keys' low `bits` bits, stably: an LSD radix
/// sort of 11-bit digits at most, through `tmp` (of the same length).
fn radix_sort_pairs(pairs: &mut Vec<u64>, tmp: &mut Vec<u64>, counts: &mut Vec<u32>, bits: u32) {
    let passes = bits.div_ceil(11);
    let width = bits.div_ceil(passes.max(1));
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
            tmp[counts[d] as usize] = x;
            counts[d] += 1;
        }
        core::mem::swap(pairs, tmp);
    }
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

    /// The scan finds a field that cannot move exactly when `Table::first_overflow` does
    /// (its bounds are exact only near an overflow).
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
                    let scan = match layout {
                        Layout::Extable => scan::<Specialised<false, true, 0>>(&c, n),
                        Layout::LinuxX86 => scan::<Specialised<true, true, 2>>(&c, n),
                        _ => scan::<Specialised<false, true, 3>>(&c, n),
                    };
                    assert_eq!(
                        scan.stuck(n, size, true),
                        t.first_overflow().is_some(),
                        "{layout} n={n} seed={seed}"
                    );
                }
            }
        }
    }

    /// The bucket sort is the stable sort by key, whatever the keys' spread: uniform,
    /// bunched, equal, in order, reversed.
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
                    let got = sort_bucket::<Specialised<false, true, 0>>(&recs, bits, &mut scratch)
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
