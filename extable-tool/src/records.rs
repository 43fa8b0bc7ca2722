//! The fast path of `check` and `sort` for self-relative layouts.
//!
//! The table is read in file order only, in a few sequential passes:
//!
//! 1. [`Scan`]: the range of the sort keys, the first entry out of order, and whether a
//!    self-relative field could overflow when moved (then the simple path runs instead).
//! 2. If the table is out of order: a histogram of the top bits of the keys, then one pass
//!    that decodes each entry into a record of the entry's size (key, fixup and third word,
//!    relative to the table) and scatters it, and its index in the file, into its bucket.
//!    Each bucket is small and is sorted in cache: an LSD radix sort of (key, position)
//!    pairs. Both keep file order among equal keys, so the result is the stable order of
//!    [`crate::table::sorted_order`].
//! 3. `Walk`: the per-entry rules over each bucket in sorted order, with memoised code
//!    section, function and handler lookups. An entry that fails a rule, and every pair of
//!    entries with one key, is left to the rule functions of `check` ([`Event`]), which word
//!    the findings, so the findings are those of the simple path.
//! 4. When the sorted table is wanted, each bucket's records are encoded back into entries
//!    where they lie: the record buffer becomes the sorted table's bytes.
//!
//! The passes are shared between two threads by chunks and buckets. The hot loops are
//! specialised ([`Form`]) for the byte order, the class and the layout's shape. Peak memory
//! is the records plus a 4-byte index per entry; the table's pages are given back to the
//! file once read ([`Pages`]). Layouts of absolute words, tables of 2^32 entries or more, keys that
//! span more than 2^32 and tables with a field that overflows when moved take the simple
//! path.

use core::ops::Range;

use extable_runtime::entry::FIELD_OFFSETS;

use crate::elf::{Class, Endian};
use crate::layout::{Layout, Order, Third};
use crate::symbols::{CodeMemo, FunctionMemo, StartCache, Symbols};
use crate::table::{Entry, Extra, Table};

/// Entries per chunk of a pass over the table, by default.
pub const CHUNK: usize = 1 << 16;

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
    /// threads, and of the pages given back).
    pub chunk: usize,
    /// About 2^`bucket_log` records per bucket of the sort.
    pub bucket_log: u32,
}

impl Tuning {
    /// The defaults for a table of `n` entries: two threads from [`PARALLEL_FROM`] entries
    /// on when the machine has more than one core, [`CHUNK`]-entry chunks, buckets of about
    /// 2048 records (32 KiB: sorted in the core's cache).
    pub fn for_len(n: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        Tuning {
            parts: if n >= PARALLEL_FROM && cores > 1 {
                2
            } else {
                1
            },
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
}

/// [`Pages`] that keeps everything (bytes not backed by a file).
#[derive(Clone, Copy, Debug, Default)]
pub struct Keep;

impl Pages for Keep {
    fn release(&self, _: &[u8]) {}
}

/// A record: an entry's words decoded, native-endian: `[key - kmin, fixup, third]`, where
/// fixup (and a relative third word) are targets relative to the table start modulo 2^32
/// and a data word is kept as its file bytes. A record has the entry's size: 8-byte
/// entries have no third word.
type Rec = [u8; 12];

#[inline(always)]
fn word(r: &[u8], k: usize) -> u32 {
    u32::from_ne_bytes([r[4 * k], r[4 * k + 1], r[4 * k + 2], r[4 * k + 3]])
}

/// What the third word of an entry is, as a constant of a [`Form`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThirdKind {
    /// A self-relative handler at [`FIELD_OFFSETS`]`[2]`.
    Handler,
    /// A data word at [`FIELD_OFFSETS`]`[2]`, copied as is.
    Data,
    /// No third word (8-byte entries).
    Nothing,
}

/// The facts about a table's entries that the hot loops are specialised for.
pub trait Form {
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

/// The [`Form`] of a byte order, a class and a shape: 0 this project's layout, 1 three
/// relative words ordered like Linux, 2 two relative words and a data word, 3 two relative
/// words.
struct F<const BIG: bool, const WIDE: bool, const SHAPE: u8>;

impl<const BIG: bool, const WIDE: bool, const SHAPE: u8> Form for F<BIG, WIDE, SHAPE> {
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

/// Work specialised for a [`Form`].
trait Job {
    type Out;
    fn run<Fm: Form>(self) -> Self::Out;
}

/// The shape number of a table (see [`F`]), or `None` when the fast path does not take it.
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
            $(($big, $wide, $s) => $job.run::<F<$big, $wide, $s>>(),)*
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
fn rd<Fm: Form>(raw: &[u8], at: usize) -> u32 {
    let b = [raw[at], raw[at + 1], raw[at + 2], raw[at + 3]];
    if Fm::BIG {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

#[inline(always)]
fn wr<Fm: Form>(v: u32) -> [u8; 4] {
    if Fm::BIG {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

#[inline(always)]
fn mask<Fm: Form>(v: u64) -> u64 {
    if Fm::WIDE {
        v
    } else {
        v & 0xffff_ffff
    }
}

/// How entries of one table become records, and records entries and bytes.
#[derive(Clone, Copy, Debug)]
struct Codec<'d> {
    t: Table<'d>,
    kmin: u64,
}

impl<'d> Codec<'d> {
    /// The entries `range` of the table, one slice per entry.
    #[inline(always)]
    fn entries<Fm: Form>(&self, range: Range<usize>) -> core::slice::ChunksExact<'d, u8> {
        self.t.bytes[range.start * Fm::SIZE..range.end * Fm::SIZE].chunks_exact(Fm::SIZE)
    }

    /// The bytes of entry `i`.
    #[inline(always)]
    fn raw<Fm: Form>(&self, i: usize) -> &'d [u8] {
        &self.t.bytes[i * Fm::SIZE..(i + 1) * Fm::SIZE]
    }

    /// The sort key of entry `i` with bytes `raw`: [`Table::key`].
    #[inline(always)]
    fn key<Fm: Form>(&self, i: usize, raw: &[u8]) -> u64 {
        let rel = rd::<Fm>(raw, INSN);
        let off = (i * Fm::SIZE + INSN) as u64;
        if Fm::BY_ADDRESS {
            mask::<Fm>(
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
    fn relative_target<Fm: Form>(i: usize, raw: &[u8], at: usize) -> u32 {
        ((i * Fm::SIZE + at) as u32).wrapping_add(rd::<Fm>(raw, at))
    }

    /// The record of entry `i` (its first [`Form::SIZE`] bytes).
    #[inline(always)]
    fn record<Fm: Form>(&self, i: usize, raw: &[u8]) -> Rec {
        let key = self.key::<Fm>(i, raw).wrapping_sub(self.kmin) as u32;
        let fixup = Self::relative_target::<Fm>(i, raw, FIXUP);
        let third = match Fm::THIRD {
            ThirdKind::Handler => Self::relative_target::<Fm>(i, raw, THIRD),
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
    fn insn_target<Fm: Form>(&self, r: &[u8]) -> u32 {
        let key = self.kmin.wrapping_add(u64::from(word(r, 0)));
        if Fm::BY_ADDRESS {
            key.wrapping_sub(self.t.addr) as u32
        } else {
            (key as u32) ^ 0x8000_0000
        }
    }

    /// The self-relative value of the field at `at` of slot `j` when it points at `target`
    /// (relative to the table start, modulo 2^32).
    #[inline(always)]
    fn rel_at<Fm: Form>(j: usize, at: usize, target: u32) -> u32 {
        target.wrapping_sub((j * Fm::SIZE + at) as u32)
    }

    /// The address the field at `at` of slot `j` points to when it points at `target`:
    /// [`Table::target`] of the sorted table.
    #[inline(always)]
    fn resolve<Fm: Form>(&self, j: usize, at: usize, target: u32) -> u64 {
        let rel = Self::rel_at::<Fm>(j, at, target);
        let field = self.t.addr.wrapping_add((j * Fm::SIZE + at) as u64);
        mask::<Fm>(field.wrapping_add(rel as i32 as i64 as u64))
    }

    /// The entry a record stands for once it sits in slot `j` of the sorted table, as
    /// [`Table::entry`] of the sorted table reads it. The fast path runs only when no field
    /// overflows when moved, so these are the addresses of the file's entry.
    #[inline(always)]
    fn entry<Fm: Form>(&self, r: &[u8], j: usize) -> Entry {
        let insn = if Fm::BY_ADDRESS {
            self.kmin.wrapping_add(u64::from(word(r, 0)))
        } else {
            self.resolve::<Fm>(j, INSN, self.insn_target::<Fm>(r))
        };
        let fixup = self.resolve::<Fm>(j, FIXUP, word(r, 1));
        let extra = match Fm::THIRD {
            ThirdKind::Handler => Extra::Handler(self.resolve::<Fm>(j, THIRD, word(r, 2))),
            ThirdKind::Data => {
                let bytes = word(r, 2).to_ne_bytes();
                Extra::Data {
                    word: rd::<Fm>(&bytes, 0),
                    ty: crate::arch::fixup_type(self.t.layout, &bytes, self.t.endian),
                }
            }
            ThirdKind::Nothing => Extra::Nothing,
        };
        Entry { insn, fixup, extra }
    }

    /// Write the bytes of slot `j` holding record `r` to `out` ([`Form::SIZE`] bytes).
    #[inline(always)]
    fn encode<Fm: Form>(&self, r: &[u8], j: usize, out: &mut [u8]) {
        let insn = Self::rel_at::<Fm>(j, INSN, self.insn_target::<Fm>(r));
        out[INSN..INSN + 4].copy_from_slice(&wr::<Fm>(insn));
        let fixup = Self::rel_at::<Fm>(j, FIXUP, word(r, 1));
        out[FIXUP..FIXUP + 4].copy_from_slice(&wr::<Fm>(fixup));
        match Fm::THIRD {
            ThirdKind::Handler => {
                let v = Self::rel_at::<Fm>(j, THIRD, word(r, 2));
                out[THIRD..THIRD + 4].copy_from_slice(&wr::<Fm>(v));
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
        }
    }
}

/// Scan the non-empty entries `range`.
fn scan<Fm: Form>(c: &Codec<'_>, range: Range<usize>) -> Scan {
    let fields: &[usize] = match Fm::THIRD {
        ThirdKind::Handler => &FIELD_OFFSETS,
        _ => &FIELD_OFFSETS[..2],
    };
    let (mut kmin, mut kmax) = (u64::MAX, 0u64);
    let (mut vmin, mut vmax) = (i64::MAX, i64::MIN);
    let first = c.key::<Fm>(range.start, c.raw::<Fm>(range.start));
    let mut prev = first;
    let mut descent = None;
    for (k, raw) in c.entries::<Fm>(range.clone()).enumerate() {
        let i = range.start + k;
        let key = c.key::<Fm>(i, raw);
        kmin = kmin.min(key);
        kmax = kmax.max(key);
        if descent.is_none() && key < prev {
            descent = Some(i - 1);
        }
        prev = key;
        if Fm::WIDE {
            let here = (i * Fm::SIZE) as i64;
            for &f in fields {
                let v = i64::from(rd::<Fm>(raw, f) as i32) + here;
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
        first,
        last: prev,
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
    data: Option<(u16, bool)>,
    /// The key, index and entry before.
    prev: Option<(u32, usize, Entry)>,
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
    fn step<Fm: Form>(&mut self, c: &Codec<'_>, r: &[u8], i: usize, j: usize) {
        let key = word(r, 0);
        self.moved += usize::from(i != j);
        let e = c.entry::<Fm>(r, j);
        if !self.clean(&e) {
            self.events.push(Event::Entry(i, e));
        }
        if let Some((pkey, pi, pe)) = self.prev {
            if pkey == key {
                self.events.push(Event::Duplicate((pi, pe), (i, e)));
            }
        }
        self.prev = Some((key, i, e));
    }

    /// Whether `check_entry` finds nothing to say about `e`: both addresses in code, a
    /// known handler or type, and the fixup in the insn's function or in a fixup section.
    #[inline(always)]
    fn clean(&mut self, e: &Entry) -> bool {
        let s = self.symbols;
        if self.insn_code.lookup(s, e.insn).is_none() {
            return false;
        }
        let Some(fixup_section) = self.fixup_code.lookup(s, e.fixup) else {
            return false;
        };
        let third = match e.extra {
            Extra::Handler(h) => self.starts.is_function_start(s, h),
            Extra::Data { ty, .. } => self.known_type(ty),
            Extra::Nothing => true,
        };
        if !third {
            return false;
        }
        match self.funcs.containing(s, e.insn) {
            None => true,
            Some((start, end)) => (start..end).contains(&e.fixup) || fixup_section,
        }
    }

    #[inline(always)]
    fn known_type(&mut self, ty: u16) -> bool {
        match self.data {
            Some((t, known)) if t == ty => known,
            _ => {
                let known = crate::arch::fixup_type_name(self.layout, ty).is_some();
                self.data = Some((ty, known));
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
        chunk: tuning.chunk.max(1),
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

    fn run<Fm: Form>(self) -> Self::Out {
        let n = self.t.len();
        let mut codec = Codec {
            t: *self.t,
            kmin: 0,
        };
        let c = &codec;
        let scans = share(
            self.two,
            self.chunks(n),
            || (),
            |_, r| (r.start, scan::<Fm>(c, r)),
        );
        let scan = scans
            .into_iter()
            .reduce(|(a, sa), (b, sb)| (a, sa.then(sb, b)))
            .map(|(_, s)| s);
        let Some(s) = scan else {
            return Some(Fast {
                descent: None,
                moved: 0,
                events: Vec::new(),
                sorted: None,
            });
        };
        if s.stuck(n, Fm::SIZE, Fm::WIDE) || s.kmax - s.kmin > u64::from(u32::MAX) {
            return None;
        }
        codec.kmin = s.kmin;
        let (walked, sorted) = match s.descent {
            None => (self.walk_in_place::<Fm>(&codec), None),
            Some(_) => {
                let bits = 64 - (s.kmax - s.kmin).leading_zeros();
                let (walked, buf) = self.sort::<Fm>(&codec, bits)?;
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
    fn walk_in_place<Fm: Form>(&self, c: &Codec<'_>) -> Walked {
        let parts = share(
            self.two,
            self.chunks(c.t.len()),
            || Walk::new(self.symbols, c.t.layout),
            |walk, range| {
                walk.prev = range.start.checked_sub(1).map(|before| {
                    let r = c.record::<Fm>(before, c.raw::<Fm>(before));
                    (word(&r, 0), before, c.entry::<Fm>(&r, before))
                });
                for (k, raw) in c.entries::<Fm>(range.clone()).enumerate() {
                    let i = range.start + k;
                    let r = c.record::<Fm>(i, raw);
                    walk.step::<Fm>(c, &r[..Fm::SIZE], i, i);
                }
                self.pages
                    .release(&c.t.bytes[range.start * Fm::SIZE..range.end * Fm::SIZE]);
                walk.take()
            },
        );
        Walked::join(parts)
    }

    /// Decode, bucket and sort the records of the whole table, walking each bucket once
    /// sorted; the buffer ends holding the sorted table's bytes when `keep`. `None` if the
    /// table changed between passes.
    fn sort<Fm: Form>(&self, c: &Codec<'_>, bits: u32) -> Option<(Walked, Vec<u8>)> {
        let n = c.t.len();
        let size = Fm::SIZE;
        let top = top_bits(n, bits, self.bucket_log);
        let shift = bits - top;
        let digit = move |k: u32| k.checked_shr(shift).unwrap_or(0) as usize;
        let buckets = 1usize << top;
        let ranges = self.chunks(n);
        let counts = share(
            self.two,
            ranges.clone(),
            || (),
            |_, range| {
                let mut counts = vec![0usize; buckets];
                for (k, raw) in c.entries::<Fm>(range.clone()).enumerate() {
                    let key = c.key::<Fm>(range.start + k, raw).wrapping_sub(c.kmin) as u32;
                    counts[digit(key)] += 1;
                }
                counts
            },
        );
        // The records take the table's place in memory: give its pages back first.
        self.pages.release(c.t.bytes);
        let mut buf = vec![0u8; n * size];
        let mut index = vec![0u32; n];
        // Bucket d holds the records of chunk 0, then of chunk 1..., each in file order:
        // the parts of each chunk, by bucket, of the records and of their indices.
        type Part<'b> = (&'b mut [u8], &'b mut [u32]);
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
            |_, (range, mut parts)| {
                let mut fill = vec![0usize; buckets];
                for (k, raw) in c.entries::<Fm>(range.clone()).enumerate() {
                    let i = range.start + k;
                    let r = c.record::<Fm>(i, raw);
                    let d = digit(word(&r, 0));
                    let (recs, idx) = &mut parts[d];
                    let f = fill[d];
                    recs.get_mut(f * size..(f + 1) * size)?
                        .copy_from_slice(&r[..size]);
                    *idx.get_mut(f)? = i as u32;
                    fill[d] += 1;
                }
                self.pages
                    .release(&c.t.bytes[range.start * size..range.end * size]);
                Some(())
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
            let (x, x_rest) = idx.split_at(m);
            items.push((starts[d], r, x));
            (recs, idx) = (r_rest, x_rest);
        }
        let walked = share(
            self.two,
            items,
            || {
                (
                    Walk::new(self.symbols, c.t.layout),
                    Scratch::default(),
                    Vec::new(),
                )
            },
            |(walk, scratch, out), (base, recs, idx)| {
                let m = idx.len();
                let order = sort_bucket::<Fm>(recs, m, shift, scratch);
                // Buckets differ in their keys' top bits: no duplicate across two.
                walk.prev = None;
                out.clear();
                for (r, &k) in order.iter().enumerate() {
                    let k = k as usize;
                    let rec = &recs[k * size..(k + 1) * size];
                    walk.step::<Fm>(c, rec, idx[k] as usize, base + r);
                    if self.keep {
                        let mut bytes = [0u8; 12];
                        c.encode::<Fm>(rec, base + r, &mut bytes[..size]);
                        out.extend_from_slice(&bytes[..size]);
                    }
                }
                if self.keep {
                    recs.copy_from_slice(out);
                }
                walk.take()
            },
        );
        Some((Walked::join(walked), buf))
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
    counts: Vec<usize>,
}

/// The positions of the `m` records in `recs` in stable order of their keys, which agree
/// above their low `bits` bits.
///
/// The sort moves (key, position) pairs, smaller than records, with an LSD radix sort (an
/// insertion sort for a few).
fn sort_bucket<'s, Fm: Form>(
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
    pairs.clear();
    pairs.extend(
        recs.chunks_exact(Fm::SIZE)
            .enumerate()
            .map(|(k, r)| (u64::from(word(r, 0)) << 32) | k as u64),
    );
    order.clear();
    if pairs.windows(2).all(|w| w[0] <= w[1]) {
        order.extend(0..m as u32);
        return order;
    }
    if m <= 32 {
        // (key, position) is unique: any order by it is the stable order by key.
        pairs.sort_unstable();
    } else {
        let passes = bits.div_ceil(11);
        let width = bits.div_ceil(passes);
        pairs_tmp.clear();
        pairs_tmp.resize(m, 0);
        counts.clear();
        counts.resize(1 << width, 0);
        for p in 0..passes {
            let shift = 32 + p * width;
            let mask = (1u64 << width) - 1;
            let digit = |x: u64| ((x >> shift) & mask) as usize;
            counts.fill(0);
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
                pairs_tmp[counts[d]] = x;
                counts[d] += 1;
            }
            core::mem::swap(pairs, pairs_tmp);
        }
    }
    order.extend(pairs.iter().map(|&x| x as u32));
    order
}
