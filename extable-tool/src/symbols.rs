//! Addresses to `symbol+offset`, the function that contains an address, and the code
//! sections of a file.

use std::sync::OnceLock;

use crate::elf::{Fields, FieldsPass, Image, ReadFields, Section, Symbol};

/// A named address range from `.symtab`.
#[derive(Clone, Copy, Debug)]
struct Named {
    addr: u64,
    size: u64,
    symbol: usize,
    section: usize,
    function: bool,
}

/// Lookups over the symbols and sections of one file.
#[derive(Debug)]
pub struct Symbols<'i, 'd> {
    image: &'i Image<'d>,
    /// The index of every symbol: built by [`Symbols::new`], or by the first lookup that
    /// `near` cannot answer.
    all: OnceLock<Index>,
    /// For [`Symbols::for_addresses`]: what one pass over the symbol table decided for the
    /// queried addresses.
    near: Option<Near>,
    /// Loaded executable sections, by address: (start, end, section index).
    code: Vec<(u64, u64, usize)>,
    /// Whether names are demangled in [`Self::describe`].
    demangle: bool,
}

/// What one pass over the symbol table found below each of a few addresses: enough to
/// answer their lookups when the nearest symbol decides the answer, as it does in code
/// where every function has a sized symbol.
#[derive(Debug)]
struct Near {
    /// The addresses, ascending and distinct.
    queries: Vec<u64>,
    /// A few queries with the greatest named symbol at or below each, by [`Named::key`],
    /// found by the first pass ([`Described`]); ascending.
    described: Vec<(u64, Nearest<Named>)>,
    /// For each query: the greatest named symbol at or below it; found by a second pass
    /// the first time one not in `described` is needed ([`NamedPass`]).
    named: OnceLock<Vec<Nearest<Named>>>,
    /// For each query: the greatest sized function (start, end) starting at or below it,
    /// and the greatest end of all the sized functions starting at or below it.
    functions: Vec<(Nearest<(u64, u64)>, u64)>,
    /// Starts of function symbols (raw value and code address) equal to a query, sorted.
    function_starts: Vec<u64>,
}

/// The nearest symbol at or below a queried address, as far as one pass could tell.
#[derive(Clone, Copy, Debug)]
enum Nearest<T> {
    /// There is none.
    Nothing,
    /// This one.
    Found(T),
    /// The greatest candidate has a name lookups skip (see [`is_noise`]): the answer is
    /// one of those below it, which the pass did not keep.
    Unknown,
}

/// Symbols sorted for lookups.
#[derive(Debug, Default)]
struct Index {
    /// Function, object and untyped symbols with names, by [`Named::key`].
    named: Vec<Named>,
    /// Functions with a size, by start address.
    functions: Vec<(u64, u64)>,
    /// Starts of function symbols (raw value and code address), sorted.
    function_starts: Vec<u64>,
}

impl Index {
    fn new(
        mut named: Vec<Named>,
        mut functions: Vec<(u64, u64)>,
        mut function_starts: Vec<u64>,
    ) -> Self {
        named.sort_by_key(Named::key);
        functions.sort_unstable();
        function_starts.sort_unstable();
        function_starts.dedup();
        Index {
            named,
            functions,
            function_starts,
        }
    }

    /// Every symbol of `image`.
    fn of_all(image: &Image<'_>) -> Self {
        let mut named = Vec::new();
        let mut functions = Vec::new();
        let mut function_starts = Vec::new();
        for c in candidates(image) {
            if c.named.function {
                function_starts.extend([c.raw, c.named.addr]);
            }
            functions.extend(c.named.function_range());
            named.push(c.named);
        }
        Index::new(named, functions, function_starts)
    }

    fn containing_below(&self, at: usize, addr: u64) -> Option<(u64, u64)> {
        self.functions[..at]
            .iter()
            .rev()
            .take(FUNCTION_NEIGHBOURS)
            .find(|f| addr < f.1)
            .copied()
    }
}

/// The readable form of a Rust (legacy or v0) or C++ (Itanium) symbol name, as
/// binutils' `addr2line -C` and `c++filt` print it (Rust hashes and crate disambiguators
/// kept: they tell apart two versions of one crate); other names unchanged.
pub fn demangle(name: &str) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return d.to_string();
    }
    if name.starts_with("_Z") {
        if let Ok(sym) = cpp_demangle::Symbol::new(name) {
            if let Ok(d) = sym.demangle() {
                return d;
            }
        }
    }
    name.to_string()
}

fn with_offset(name: &str, off: u64) -> String {
    match off {
        0 => name.to_string(),
        off => format!("{name}+{off:#x}"),
    }
}

/// Whether a code section holds fixup code (`.fixup`, `.text.fixup`, ...).
fn is_fixup_section(s: &Section<'_>) -> bool {
    s.name.windows(5).any(|w| w == b"fixup")
}

/// Whether a symbol name, by its first two bytes (zero-padded), is empty, a mapping symbol
/// or a local label: useless in messages.
fn is_noise(prefix: [u8; 2]) -> bool {
    prefix[0] == 0 || prefix[0] == b'$' || prefix == *b".L"
}

/// A symbol that lookups can answer with, and the raw value it starts at.
struct Candidate {
    named: Named,
    /// `st_value` (for functions: before the ISA bit is cleared).
    raw: u64,
}

impl Named {
    /// The order lookups search in: by address; at one address functions, then sized
    /// symbols, then later symbols, come last (and win).
    fn key(&self) -> (u64, bool, u64, usize) {
        (self.addr, self.function, self.size, self.symbol)
    }

    /// The order of sized functions: by start, then end ([`Index::functions`]' order).
    fn function_key(&self) -> (u64, u64, usize) {
        (self.addr, self.addr.saturating_add(self.size), self.symbol)
    }

    fn function_range(&self) -> Option<(u64, u64)> {
        (self.function && self.size > 0).then(|| (self.addr, self.addr.saturating_add(self.size)))
    }
}

/// Symbol `symbol`, `s`, as lookups see it, if it is a function, object or untyped symbol
/// in a section (whatever its name: see [`is_noise`]).
#[inline]
fn typed_candidate(code_mask: u64, symbol: usize, s: &Fields) -> Option<Candidate> {
    let kind = 1u16 << s.kind;
    if kind & CANDIDATE_KINDS == 0 {
        return None;
    }
    let function = kind & FUNCTION_KINDS != 0;
    let section = s.section?;
    let addr = if function {
        s.value & code_mask
    } else {
        s.value
    };
    Some(Candidate {
        named: Named {
            addr,
            size: s.size,
            symbol,
            section,
            function,
        },
        raw: s.value,
    })
}

const STT_NOTYPE: u8 = object::elf::STT_NOTYPE.0;
const STT_OBJECT: u8 = object::elf::STT_OBJECT.0;
/// The types of [`typed_candidate`]'s functions and of all its symbols, as bit masks of
/// `STT_*` values.
const FUNCTION_KINDS: u16 = 1 << object::elf::STT_FUNC.0 | 1 << object::elf::STT_GNU_IFUNC.0;
const CANDIDATE_KINDS: u16 = 1 << STT_NOTYPE | 1 << STT_OBJECT | FUNCTION_KINDS;

/// The bits of a function symbol's value that make its code address (ARM's Thumb bit is
/// not one of them).
fn code_mask(image: &Image<'_>) -> u64 {
    crate::arch::code_address(image.machine, u64::MAX)
}

/// The function, object and untyped symbols of `image` that have a name worth printing.
fn candidates<'a>(image: &'a Image<'_>) -> impl Iterator<Item = Candidate> + 'a {
    let code_mask = code_mask(image);
    image
        .symbols
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(move |(symbol, s)| {
            typed_candidate(code_mask, symbol, &s.fields()).filter(|_| !is_noise(s.name_start()))
        })
}

/// The greatest symbol a pass has seen in one bucket, by some key: its index (0: none yet)
/// and the address it is compared by first.
#[derive(Clone, Copy, Debug, Default)]
struct Kept {
    symbol: usize,
    addr: u64,
}

/// What the function pass keeps of the functions that start in one bucket: the greatest
/// sized one by [`Named::function_key`] and the greatest end; with described queries, the
/// greatest of all by [`Named::key`] (the one a described query below may be named by).
#[derive(Clone, Copy, Debug, Default)]
struct FunctionBucket {
    greatest: Kept,
    end: u64,
    named: Kept,
}

/// Where to look for the first of the ascending queries at or above an address: the range
/// from the first query to the last is split into 2^k equal slots, each with the index of
/// the first query at or above its start, so that a lookup is a shift and a search of the
/// few queries in one slot. (Symbol tables are in address order only in runs: the local
/// symbols of each object file. The global ones come in the linker's hash order, each in
/// another bucket than the one before.)
#[derive(Debug)]
struct Guide {
    base: u64,
    shift: u32,
    /// For slot k: the index of the first query at or above `base + (k << shift)`; one
    /// more entry than slots.
    first: Vec<usize>,
}

impl Guide {
    fn new(queries: &[u64]) -> Self {
        let (Some(&base), Some(&last)) = (queries.first(), queries.last()) else {
            return Guide {
                base: 0,
                shift: 0,
                first: vec![0, 0],
            };
        };
        let slots = (2 * queries.len()).next_power_of_two() as u64;
        let span = last - base;
        let shift = (0..64).find(|&s| span >> s < slots).unwrap_or(63);
        let mut first = Vec::with_capacity(slots as usize + 1);
        let mut at = 0;
        for k in 0..=(span >> shift) + 1 {
            let start = u64::try_from(u128::from(k) << shift)
                .ok()
                .and_then(|d| base.checked_add(d))
                .unwrap_or(u64::MAX);
            while at < queries.len() && queries[at] < start {
                at += 1;
            }
            first.push(at);
        }
        Guide { base, shift, first }
    }

    /// The index of the first of `queries` (those the guide was made for) at or above
    /// `addr`, `queries.len()` when none is.
    #[inline(always)]
    fn first_at_or_above(&self, queries: &[u64], addr: u64) -> usize {
        if addr <= self.base {
            return 0;
        }
        let slot = usize::try_from((addr - self.base) >> self.shift).unwrap_or(usize::MAX);
        let (Some(&lo), Some(&hi)) = (self.first.get(slot), self.first.get(slot.saturating_add(1)))
        else {
            return queries.len();
        };
        lo + queries[lo..hi].partition_point(|&q| q < addr)
    }
}

/// One `B` per bucket of the ascending, distinct `queries`: bucket `j` is for what starts
/// in `(queries[j - 1], queries[j]]`, and one more bucket for what starts above every
/// query. Symbol tables are mostly in address order, so the bucket in use is held apart
/// (with its bounds) and stored back only when a symbol falls into another.
struct Buckets<'q, B> {
    queries: &'q [u64],
    guide: Guide,
    stored: Vec<B>,
    /// The bucket in use: its index, contents and bounds.
    j: usize,
    current: B,
    /// `queries[j - 1]` (0 for the first bucket: address 0 then takes the slow path).
    lo: u64,
    /// `queries[j]`.
    hi: u64,
}

impl<'q, B: Copy + Default> Buckets<'q, B> {
    fn new(queries: &'q [u64]) -> Self {
        Buckets {
            queries,
            guide: Guide::new(queries),
            stored: vec![B::default(); queries.len() + 1],
            j: 0,
            current: B::default(),
            lo: 0,
            hi: queries.first().copied().unwrap_or(u64::MAX),
        }
    }

    /// The bucket that `addr` starts in.
    #[inline(always)]
    fn of(&mut self, addr: u64) -> &mut B {
        if !(self.lo < addr && addr <= self.hi) {
            self.switch_to(addr);
        }
        &mut self.current
    }

    /// The least query at or above the address last passed to [`Self::of`]: the only
    /// query that address can be equal to.
    #[inline(always)]
    fn least_query_above(&self) -> u64 {
        self.hi
    }

    #[inline(always)]
    fn switch_to(&mut self, addr: u64) {
        self.stored[self.j] = self.current;
        self.j = self.guide.first_at_or_above(self.queries, addr);
        self.current = self.stored[self.j];
        self.lo = self.j.checked_sub(1).map_or(0, |k| self.queries[k]);
        self.hi = self.queries.get(self.j).copied().unwrap_or(u64::MAX);
    }

    /// One `B` per query, for the bucket that ends at it (what starts above every query is
    /// dropped).
    fn finish(mut self) -> Vec<B> {
        self.stored[self.j] = self.current;
        self.stored.pop();
        self.stored
    }
}

/// Compares symbols that a pass keeps: by address, then, at one address, by the key of
/// their candidates (read again from the table, rarely).
struct Ranking<'i, 'd> {
    image: &'i Image<'d>,
    code_mask: u64,
}

impl Ranking<'_, '_> {
    /// The candidate that symbol `symbol` (a kept one) is.
    fn candidate(&self, symbol: usize) -> Option<Named> {
        let s = self.image.symbols.get(symbol).fields();
        typed_candidate(self.code_mask, symbol, &s).map(|c| c.named)
    }

    /// Of `kept` and `symbol` at `addr`, the greater: by address, then by `key`.
    #[inline(always)]
    fn greater<K: Ord>(&self, kept: Kept, symbol: usize, addr: u64, key: fn(&Named) -> K) -> Kept {
        if kept.symbol == 0 || kept.addr < addr {
            Kept { symbol, addr }
        } else if kept.addr == addr {
            Kept {
                symbol: self.tie(kept.symbol, symbol, key),
                addr,
            }
        } else {
            kept
        }
    }

    /// Of the kept symbol `kept` and symbol `symbol`, at the same address, the greater by
    /// `key`.
    #[cold]
    #[inline(never)]
    fn tie<K: Ord>(&self, kept: usize, symbol: usize, key: fn(&Named) -> K) -> usize {
        match (self.candidate(kept), self.candidate(symbol)) {
            (Some(t), Some(n)) if key(&t) < key(&n) => symbol,
            _ => kept,
        }
    }

    /// The candidate each bucket kept.
    fn kept<'a>(&'a self, buckets: &'a [Kept]) -> impl Iterator<Item = Option<Named>> + 'a {
        buckets
            .iter()
            .map(|k| (k.symbol != 0).then(|| self.candidate(k.symbol)).flatten())
    }
}

/// [`Symbols::for_addresses_visiting`]'s loop over the symbol table: the functions at or
/// below each query, the named symbols below the few described ones, and the object
/// symbols for `visit`. It reads no names but those of object symbols (for `visit`), of
/// functions that start at a query and of untyped symbols that would name a described
/// query.
struct FunctionPass<'i, 'd, V, const DESCRIBING: bool> {
    image: &'i Image<'d>,
    /// Ascending and distinct.
    queries: Vec<u64>,
    /// The few queries whose named symbol is found in the same pass (`DESCRIBING`: there
    /// are some; the loop without them is compiled apart).
    described: Described,
    visit: V,
}

/// The greatest named symbol at or below each of a few addresses, found by the function
/// pass: those that a message is known to name before any rule runs (an unsorted table's
/// first pair out of order), so that naming them needs no second pass. Untyped and object
/// symbols are kept here; functions in the buckets ([`FunctionBucket::named`]).
struct Described {
    /// Ascending and distinct.
    addrs: Vec<u64>,
    kept: Vec<Kept>,
    /// The least address a symbol may have to be kept: that of the least kept one.
    floor: u64,
}

impl Described {
    fn new(mut addrs: Vec<u64>) -> Self {
        addrs.sort_unstable();
        addrs.dedup();
        Described {
            kept: vec![Kept::default(); addrs.len()],
            addrs,
            floor: 0,
        }
    }

    /// Whether a symbol at `addr` could be kept: at or below the greatest address, and
    /// not below every symbol kept so far. Most symbols are not, and are passed over
    /// before their other fields are read.
    #[inline(always)]
    fn may_keep(&self, addr: u64) -> bool {
        self.floor <= addr && self.addrs.last().is_some_and(|&top| addr <= top)
    }

    /// See candidate `symbol` of type `kind` at `addr`.
    #[inline(always)]
    fn see(&mut self, ranking: &Ranking<'_, '_>, symbol: usize, kind: u8, addr: u64) {
        let mut changed = false;
        for (&at, kept) in self.addrs.iter().zip(&mut self.kept) {
            if addr <= at && addr >= kept.addr {
                if addr > kept.addr && kind != STT_NOTYPE {
                    *kept = Kept { symbol, addr };
                } else {
                    Self::take(ranking, kept, symbol, kind, addr);
                }
                changed = true;
            }
        }
        if changed {
            self.floor = self.kept.iter().map(|k| k.addr).min().unwrap_or(0);
        }
    }

    #[cold]
    #[inline(never)]
    fn take(ranking: &Ranking<'_, '_>, kept: &mut Kept, symbol: usize, kind: u8, addr: u64) {
        // Mapping symbols and local labels are untyped: skipped, they never hide the
        // symbol below them.
        if kind == STT_NOTYPE && is_noise(ranking.image.symbols.get(symbol).name_start()) {
            return;
        }
        *kept = ranking.greater(*kept, symbol, addr, Named::key);
    }

    /// Each address with its nearest named symbol: the greater of the one kept here and
    /// the greatest function at or below it, from the function pass's `buckets` over
    /// `queries` (which hold every described address).
    fn finish(
        self,
        ranking: &Ranking<'_, '_>,
        queries: &[u64],
        buckets: &[FunctionBucket],
    ) -> Vec<(u64, Nearest<Named>)> {
        let function_below = |addr: u64| {
            let j = queries.partition_point(|&q| q < addr);
            buckets[..=j.min(buckets.len() - 1)]
                .iter()
                .rev()
                .map(|b| b.named)
                .find(|k| k.symbol != 0)
        };
        let nearest = self.addrs.iter().zip(&self.kept).map(|(&addr, &kept)| {
            let top = match function_below(addr) {
                Some(f) => ranking.greater(kept, f.symbol, f.addr, Named::key),
                None => kept,
            };
            let top = ranking.kept(&[top]).next().flatten();
            top.map_or(Nearest::Nothing, |n| judged(ranking.image, n, n))
        });
        self.addrs.iter().copied().zip(nearest).collect()
    }
}

impl<'d, V: FnMut(&Symbol<'d>), const DESCRIBING: bool> FieldsPass
    for FunctionPass<'_, 'd, V, DESCRIBING>
{
    type Output = Near;

    fn run<R: ReadFields>(mut self, symbols: &R) -> Near {
        let table = &self.image.symbols;
        let code_mask = code_mask(self.image);
        let mut buckets = Buckets::<FunctionBucket>::new(&self.queries);
        let mut function_starts = Vec::new();
        let ranking = Ranking {
            image: self.image,
            code_mask,
        };
        for symbol in 1..symbols.len() {
            let kind = symbols.kind(symbol);
            if kind == STT_OBJECT {
                (self.visit)(&table.get(symbol));
            }
            // Only functions count from here, and the objects and untyped symbols that may
            // name a described query: the others are passed over on their type byte or
            // their value, their other fields never decoded.
            if (1u16 << kind) & FUNCTION_KINDS == 0
                && !(DESCRIBING
                    && (kind == STT_OBJECT || kind == STT_NOTYPE)
                    && self.described.may_keep(symbols.value(symbol)))
            {
                continue;
            }
            let f = symbols.fields(symbol);
            let Some(Candidate { named: n, raw }) = typed_candidate(code_mask, symbol, &f) else {
                continue;
            };
            if !n.function {
                if DESCRIBING {
                    self.described.see(&ranking, symbol, f.kind, n.addr);
                }
                continue;
            }
            let b = buckets.of(n.addr);
            if n.size > 0 {
                b.greatest = ranking.greater(b.greatest, symbol, n.addr, Named::function_key);
                b.end = b.end.max(n.addr.saturating_add(n.size));
            }
            if DESCRIBING {
                b.named = ranking.greater(b.named, symbol, n.addr, Named::key);
            }
            // A query equals the start only if it is the least one at or above it. The
            // raw value differs only by an ISA bit.
            if n.addr == buckets.least_query_above() || raw != n.addr {
                function_start(
                    &self.queries,
                    &mut function_starts,
                    table,
                    symbol,
                    [n.addr, raw],
                );
            }
        }
        let buckets = buckets.finish();
        let described = self.described.finish(&ranking, &self.queries, &buckets);
        let greatest: Vec<Kept> = buckets.iter().map(|b| b.greatest).collect();
        let ends = buckets.iter().scan(0, |max, b| {
            *max = b.end.max(*max);
            Some(*max)
        });
        let functions = nearest_at_or_below(self.image, ranking.kept(&greatest), |f| {
            (f.addr, f.addr.saturating_add(f.size))
        });
        function_starts.sort_unstable();
        function_starts.dedup();
        Near {
            functions: functions.into_iter().zip(ends).collect(),
            described,
            named: OnceLock::new(),
            queries: self.queries,
            function_starts,
        }
    }
}

/// Record the starts of function `symbol` that are queries (unless its name is one that
/// lookups skip).
#[cold]
#[inline(never)]
fn function_start(
    queries: &[u64],
    starts: &mut Vec<u64>,
    table: &crate::elf::SymbolTable<'_>,
    symbol: usize,
    at: [u64; 2],
) {
    let name = table.get(symbol).name_start();
    for start in at {
        if queries.binary_search(&start).is_ok() && !is_noise(name) {
            starts.push(start);
        }
    }
}

/// The loop that finds the greatest named symbol at or below each query, run the first
/// time one is needed: only to describe an address in a message or to confirm a finding,
/// so a clean check never runs it. It looks only at symbols in [`Windows`].
struct NamedPass<'i, 'd, 'q> {
    image: &'i Image<'d>,
    /// Ascending and distinct.
    queries: &'q [u64],
    /// Where the greatest named symbol at or below some query can start.
    windows: Windows,
}

/// The number of granules [`Windows`] splits its range into (a bit each): 8 KiB.
const WINDOW_GRANULES: u64 = 1 << 16;

/// Where the greatest named symbol at or below each query can start, as the function pass
/// bounds it: for a query with a sized function at or below it, from that function's
/// start (the function is a named symbol, greater than any below it), else from the
/// query below (what its bucket holds; the answers below come from the buckets below).
/// A symbol elsewhere cannot be an answer. Kept as one bit per granule of the range the
/// windows span, a granule marked when a window touches it, so that most symbols are
/// passed over with one test.
struct Windows {
    /// When the first query has no function below it: that query, at or below which
    /// every address may hold its answer.
    open_below: Option<u64>,
    base: u64,
    shift: u32,
    bits: Vec<u64>,
}

impl Windows {
    fn new(queries: &[u64], functions: &[(Nearest<(u64, u64)>, u64)]) -> Self {
        let mut open_below = None;
        let mut windows = Vec::with_capacity(queries.len());
        for (j, (&q, f)) in queries.iter().zip(functions).enumerate() {
            match (f.0, j.checked_sub(1)) {
                (Nearest::Found((start, _)), _) => windows.push((start, q)),
                (_, Some(below)) => windows.push((queries[below] + 1, q)),
                (_, None) => open_below = Some(q),
            }
        }
        windows.sort_unstable();
        let (Some(&(base, _)), Some(&last)) = (windows.first(), queries.last()) else {
            return Windows {
                open_below,
                base: u64::MAX,
                shift: 0,
                bits: Vec::new(),
            };
        };
        let shift = (0..64)
            .find(|&s| (last - base) >> s < WINDOW_GRANULES)
            .unwrap_or(63);
        let mut marked = Windows {
            open_below,
            base,
            shift,
            bits: vec![0; ((last - base) >> shift) as usize / 64 + 1],
        };
        // Sorted by start: overlapping windows merge into runs, each marked once.
        let mut run: Option<(u64, u64)> = None;
        for (lo, hi) in windows {
            let (a, b) = ((lo - base) >> shift, (hi - base) >> shift);
            run = match run {
                Some((ra, rb)) if a <= rb + 1 => Some((ra, rb.max(b))),
                Some(done) => {
                    marked.mark(done);
                    Some((a, b))
                }
                None => Some((a, b)),
            };
        }
        if let Some(done) = run {
            marked.mark(done);
        }
        marked
    }

    /// Mark granules `a..=b`.
    fn mark(&mut self, (a, b): (u64, u64)) {
        for g in a..=b {
            self.bits[(g / 64) as usize] |= 1 << (g % 64);
        }
    }

    /// Whether a symbol at `addr` may be the greatest at or below some query.
    #[inline(always)]
    fn may_hold(&self, addr: u64) -> bool {
        if self.open_below.is_some_and(|q| addr <= q) {
            return true;
        }
        let Some(granule) = addr.checked_sub(self.base).map(|d| d >> self.shift) else {
            return false;
        };
        let word = usize::try_from(granule / 64).unwrap_or(usize::MAX);
        self.bits
            .get(word)
            .is_some_and(|w| w >> (granule % 64) & 1 != 0)
    }
}

impl FieldsPass for NamedPass<'_, '_, '_> {
    type Output = Vec<Nearest<Named>>;

    fn run<R: ReadFields>(self, symbols: &R) -> Vec<Nearest<Named>> {
        let table = &self.image.symbols;
        let ranking = Ranking {
            image: self.image,
            code_mask: code_mask(self.image),
        };
        let mut buckets = Buckets::<Kept>::new(self.queries);
        for symbol in 1..symbols.len() {
            let f = symbols.fields(symbol);
            let Some(Candidate { named: n, .. }) = typed_candidate(ranking.code_mask, symbol, &f)
            else {
                continue;
            };
            if !self.windows.may_hold(n.addr) {
                continue;
            }
            // Mapping symbols and local labels are untyped: skipped here, they never hide
            // the symbol below them. Other symbols' names are read only if they are kept.
            if f.kind == STT_NOTYPE && is_noise(table.get(symbol).name_start()) {
                continue;
            }
            let b = buckets.of(n.addr);
            *b = ranking.greater(*b, symbol, n.addr, Named::key);
        }
        nearest_at_or_below(self.image, ranking.kept(&buckets.finish()), |n| n)
    }
}

/// For each query, from the greatest candidate of each bucket (bucket `j`: what starts in
/// `(queries[j - 1], queries[j]]`): the greatest at or below the query, that of the
/// nearest bucket at or below it that has one, as `part` of it; [`Nearest::Unknown`] when
/// that candidate has a name lookups skip, since the pass kept nothing below it.
fn nearest_at_or_below<T: Copy>(
    image: &Image<'_>,
    buckets: impl Iterator<Item = Option<Named>>,
    part: impl Fn(Named) -> T,
) -> Vec<Nearest<T>> {
    let mut nearest = Nearest::Nothing;
    buckets
        .map(|top| {
            if let Some(n) = top {
                nearest = judged(image, n, part(n));
            }
            nearest
        })
        .collect()
}

/// `part` of `n`, the greatest candidate at or below an address, as that address's
/// nearest: [`Nearest::Unknown`] when `n` has a name lookups skip (nothing below it was
/// kept).
fn judged<T>(image: &Image<'_>, n: Named, part: T) -> Nearest<T> {
    if is_noise(image.symbols.get(n.symbol).name_start()) {
        Nearest::Unknown
    } else {
        Nearest::Found(part)
    }
}

/// How many symbols at or below an address [`Symbols::describe`] looks at.
const DESCRIBE_NEIGHBOURS: usize = 8;
/// How many functions starting at or below an address [`Symbols::function_containing`]
/// looks at (nested or overlapping aliases).
const FUNCTION_NEIGHBOURS: usize = 4;

impl<'i, 'd> Symbols<'i, 'd> {
    /// Index every symbol and the sections of `image`, to answer lookups of any address.
    pub fn new(image: &'i Image<'d>) -> Self {
        Self::from_parts(image, OnceLock::from(Index::of_all(image)), None)
    }

    /// Find, in one pass over the symbol table, what lookups of the addresses in `queries`
    /// need: for each query, the greatest sized function at or below it, and whether it is
    /// a function start. The pass keeps a few words per query and looks only at function
    /// symbols (and the names of those that start at a query). The greatest named symbol
    /// at or below each query, which only messages need (see [`Self::describe`]), is found
    /// by a second pass the first time it is asked for. A lookup that these decide (the
    /// nearest symbol covers the address, or nothing can) answers from them; any other
    /// lookup builds the index of every symbol ([`Symbols::new`]) once and answers from
    /// it, so every answer is the full index's. For files with many symbols and a table of
    /// a few hundred entries this avoids sorting the whole symbol table.
    #[cfg(test)]
    pub fn for_addresses(image: &'i Image<'d>, queries: Vec<u64>) -> Self {
        Self::for_addresses_visiting(image, queries, Vec::new(), |_| {})
    }

    /// [`Self::for_addresses`], finding in the same pass the named symbol below each of
    /// `described` (a few of the queries that a message will name) and calling `visit` on
    /// every object symbol (`STT_OBJECT`), in table order.
    pub fn for_addresses_visiting(
        image: &'i Image<'d>,
        mut queries: Vec<u64>,
        described: Vec<u64>,
        visit: impl FnMut(&Symbol<'d>),
    ) -> Self {
        queries.extend(&described);
        queries.sort_unstable();
        queries.dedup();
        let described = Described::new(described);
        let near = if described.addrs.is_empty() {
            image.symbols.pass(FunctionPass::<_, false> {
                image,
                queries,
                described,
                visit,
            })
        } else {
            image.symbols.pass(FunctionPass::<_, true> {
                image,
                queries,
                described,
                visit,
            })
        };
        Self::from_parts(image, OnceLock::new(), Some(near))
    }

    /// Whether the index of every symbol has been built (lookups that one pass could not
    /// decide build it).
    #[cfg(test)]
    pub fn indexed_every_symbol(&self) -> bool {
        self.all.get().is_some()
    }

    /// Whether the pass that finds the named symbol below each query has run.
    #[cfg(test)]
    pub fn found_named_symbols(&self) -> bool {
        self.near.as_ref().is_some_and(|n| n.named.get().is_some())
    }

    /// The index of every symbol, built on first use.
    fn all(&self) -> &Index {
        self.all.get_or_init(|| Index::of_all(self.image))
    }

    /// The position of `addr` among the queried addresses, when it is one.
    fn near(&self, addr: u64) -> Option<(&Near, usize)> {
        let near = self.near.as_ref()?;
        let j = near.queries.binary_search(&addr).ok()?;
        Some((near, j))
    }

    /// The greatest named symbol at or below `addr` as the passes over the queries found
    /// it, when `addr` is a query.
    fn near_named(&self, addr: u64) -> Option<Nearest<Named>> {
        let (near, j) = self.near(addr)?;
        if let Ok(k) = near.described.binary_search_by_key(&addr, |d| d.0) {
            return Some(near.described[k].1);
        }
        let named = near.named.get_or_init(|| {
            self.image.symbols.pass(NamedPass {
                image: self.image,
                queries: &near.queries,
                windows: Windows::new(&near.queries, &near.functions),
            })
        });
        Some(named[j])
    }

    fn from_parts(image: &'i Image<'d>, all: OnceLock<Index>, near: Option<Near>) -> Self {
        Symbols {
            image,
            all,
            near,
            code: code_sections(image),
            demangle: true,
        }
    }

    /// Print names as they are in `.symtab` (`false`) or demangled (`true`, the default).
    pub fn set_demangle(&mut self, on: bool) {
        self.demangle = on;
    }

    /// Whether `n` covers `addr`: a sized symbol around it, or an unsized one below it in
    /// the same section.
    fn covers(&self, n: &Named, addr: u64) -> bool {
        if n.size > 0 {
            addr - n.addr < n.size
        } else {
            self.image.sections[n.section].contains(addr) || addr == n.addr
        }
    }

    /// The symbol that covers `addr`: the first that does among the few greatest at or
    /// below it.
    fn covering(&self, addr: u64) -> Option<Named> {
        match self.near_named(addr) {
            Some(Nearest::Nothing) => return None,
            Some(Nearest::Found(n)) if self.covers(&n, addr) => return Some(n),
            _ => {}
        }
        let named = &self.all().named;
        let at = named.partition_point(|n| n.addr <= addr);
        named[..at]
            .iter()
            .rev()
            .take(DESCRIBE_NEIGHBOURS)
            .find(|n| self.covers(n, addr))
            .copied()
    }

    /// `name+0xoff` (or `name`) for the symbol that covers `addr` (a sized symbol around it,
    /// or the nearest unsized one below it in the same section), else `section+0xoff` for
    /// the loaded section that contains it, else `0x...`.
    pub fn describe(&self, addr: u64) -> String {
        if let Some(n) = self.covering(addr) {
            let name = String::from_utf8_lossy(self.image.symbols.get(n.symbol).name());
            if self.demangle {
                return with_offset(&demangle(&name), addr - n.addr);
            }
            return with_offset(&name, addr - n.addr);
        }
        let section = self
            .image
            .sections
            .iter()
            .find(|s| s.flags & object::elf::SHF_ALLOC.0 != 0 && s.contains(addr));
        match section {
            Some(s) => with_offset(&s.display_name(), addr - s.addr),
            None => format!("{addr:#x}"),
        }
    }

    /// The address of the last named symbol (function, object or label, not a mapping
    /// symbol or `.L` label) at or below `addr`.
    pub fn named_at_or_below(&self, addr: u64) -> Option<u64> {
        match self.near_named(addr) {
            Some(Nearest::Nothing) => None,
            Some(Nearest::Found(n)) => Some(n.addr),
            _ => {
                let named = &self.all().named;
                let at = named.partition_point(|n| n.addr <= addr);
                at.checked_sub(1).map(|k| named[k].addr)
            }
        }
    }

    /// The function (start, end) that contains `addr`.
    pub fn function_containing(&self, addr: u64) -> Option<(u64, u64)> {
        if let Some((near, j)) = self.near(addr) {
            match near.functions[j] {
                (Nearest::Found(f), _) if addr < f.1 => return Some(f),
                // No sized function starting at or below `addr` reaches past it.
                (_, max_end) if max_end <= addr => return None,
                _ => {}
            }
        }
        let index = self.all();
        let at = index.functions.partition_point(|f| f.0 <= addr);
        index.containing_below(at, addr)
    }

    /// A cursor for [`Self::function_containing`] over mostly ascending addresses: O(1)
    /// amortised per lookup when the addresses ascend, a binary search when they do not.
    pub fn function_cursor(&self) -> FunctionCursor<'_, 'i, 'd> {
        FunctionCursor {
            symbols: self,
            at: 0,
        }
    }

    /// Whether `addr` is the start of a function symbol.
    pub fn is_function_start(&self, addr: u64) -> bool {
        let starts = match self.near(addr) {
            Some((near, _)) => &near.function_starts,
            None => &self.all().function_starts,
        };
        starts.binary_search(&addr).is_ok()
    }

    /// The loaded executable section containing `addr`.
    pub fn code_section(&self, addr: u64) -> Option<&'i Section<'d>> {
        let (_, _, index) = code_section_containing(&self.code, addr)?;
        Some(&self.image.sections[index])
    }

    /// Whether `addr` is in a section that holds fixup code (`.fixup`, `.text.fixup`, ...).
    pub fn in_fixup_section(&self, addr: u64) -> bool {
        self.code_section(addr).is_some_and(is_fixup_section)
    }

    /// Whether the file has any loaded executable section.
    pub fn has_code(&self) -> bool {
        !self.code.is_empty()
    }
}

/// The loaded executable sections of `image`, by address: (start, end, section index).
pub(crate) fn code_sections(image: &Image<'_>) -> Vec<(u64, u64, usize)> {
    let mut code: Vec<_> = image
        .sections
        .iter()
        .filter(|s| s.is_code() && s.size > 0)
        .map(|s| (s.addr, s.addr.saturating_add(s.size), s.index))
        .collect();
    code.sort_unstable();
    code
}

/// The section of `code` ([`code_sections`]) that contains `addr`: the last one starting at
/// or below it, if `addr` is below its end.
pub(crate) fn code_section_containing(
    code: &[(u64, u64, usize)],
    addr: u64,
) -> Option<(u64, u64, usize)> {
    let at = code.partition_point(|c| c.0 <= addr);
    let section = *code[..at].last()?;
    (addr < section.1).then_some(section)
}

/// A memo of [`Symbols::code_section`] for a walk over mostly ascending addresses: it keeps
/// the interval around the last hit in which the answer is the same section, so a lookup
/// inside it is two compares. Answers equal [`Symbols::code_section`] for every address.
#[derive(Debug)]
pub struct CodeMemo {
    lo: u64,
    hi: u64,
    fixup: bool,
}

impl Default for CodeMemo {
    fn default() -> Self {
        CodeMemo {
            lo: u64::MAX,
            hi: 0,
            fixup: false,
        }
    }
}

impl CodeMemo {
    /// `None` when `addr` is outside every code section ([`Symbols::code_section`] is
    /// `None`), else whether that section holds fixup code ([`Symbols::in_fixup_section`]).
    #[inline]
    pub fn lookup(&mut self, symbols: &Symbols<'_, '_>, addr: u64) -> Option<bool> {
        if addr >= self.lo && addr < self.hi {
            return Some(self.fixup);
        }
        self.miss(symbols, addr)
    }

    #[cold]
    fn miss(&mut self, symbols: &Symbols<'_, '_>, addr: u64) -> Option<bool> {
        // The same search as `code_section_containing`, which also needs the next start.
        let code = &symbols.code;
        let at = code.partition_point(|c| c.0 <= addr);
        let (start, end, index) = *code[..at].last()?;
        if addr >= end {
            return None;
        }
        // Every address in [start, next start) finds the same section; it contains those
        // below its end.
        let next = code.get(at).map_or(u64::MAX, |c| c.0);
        self.lo = start;
        self.hi = end.min(next);
        self.fixup = is_fixup_section(&symbols.image.sections[index]);
        Some(self.fixup)
    }
}

/// A memo of [`Symbols::function_containing`] for a walk over ascending addresses: it keeps
/// the last answer and the addresses above the last query for which it cannot change, and
/// advances through the functions on a miss. Answers equal
/// [`Symbols::function_containing`] for every address, in any order.
#[derive(Debug)]
pub struct FunctionMemo {
    /// Number of functions starting at or below `lo`.
    at: usize,
    lo: u64,
    hi: u64,
    found: Option<(u64, u64)>,
}

impl Default for FunctionMemo {
    fn default() -> Self {
        FunctionMemo {
            at: 0,
            lo: u64::MAX,
            hi: 0,
            found: None,
        }
    }
}

impl FunctionMemo {
    /// The function (start, end) that contains `addr`.
    #[inline]
    pub fn containing(&mut self, symbols: &Symbols<'_, '_>, addr: u64) -> Option<(u64, u64)> {
        if addr >= self.lo && addr < self.hi {
            return self.found;
        }
        self.miss(symbols, addr)
    }

    #[cold]
    fn miss(&mut self, symbols: &Symbols<'_, '_>, addr: u64) -> Option<(u64, u64)> {
        if symbols.near.is_some() {
            // A few queried addresses: each is answered as it is, without an index to walk.
            return symbols.function_containing(addr);
        }
        let index = symbols.all();
        let f = &index.functions;
        if addr < self.lo || (self.at > 0 && f[self.at - 1].0 > addr) {
            self.at = f.partition_point(|x| x.0 <= addr);
        } else {
            while self.at < f.len() && f[self.at].0 <= addr {
                self.at += 1;
            }
        }
        let found = index.containing_below(self.at, addr);
        // Above `addr` and below the next start, the candidates are the same functions;
        // those that ended at or below `addr` stay ended, so the answer holds while `addr`
        // is below the end of the function found.
        let next = f.get(self.at).map_or(u64::MAX, |x| x.0);
        self.lo = addr;
        self.hi = next.min(found.map_or(u64::MAX, |x| x.1));
        self.found = found;
        found
    }
}

/// See [`Symbols::function_cursor`].
#[derive(Debug)]
pub struct FunctionCursor<'s, 'i, 'd> {
    symbols: &'s Symbols<'i, 'd>,
    /// Number of functions that start at or below the last address.
    at: usize,
}

impl FunctionCursor<'_, '_, '_> {
    /// The function (start, end) that contains `addr`.
    pub fn containing(&mut self, addr: u64) -> Option<(u64, u64)> {
        if self.symbols.near.is_some() {
            return self.symbols.function_containing(addr);
        }
        let index = self.symbols.all();
        let f = &index.functions;
        if self.at > 0 && f[self.at - 1].0 > addr {
            self.at = f.partition_point(|x| x.0 <= addr);
        } else {
            while self.at < f.len() && f[self.at].0 <= addr {
                self.at += 1;
            }
        }
        index.containing_below(self.at, addr)
    }
}

/// A small direct-mapped cache of [`Symbols::is_function_start`] answers: tables name a
/// handful of handlers over and over.
#[derive(Debug)]
pub struct StartCache {
    slots: [(u64, bool); 64],
}

impl Default for StartCache {
    fn default() -> Self {
        StartCache {
            slots: [(u64::MAX, false); 64],
        }
    }
}

impl StartCache {
    /// Cached [`Symbols::is_function_start`].
    pub fn is_function_start(&mut self, symbols: &Symbols<'_, '_>, addr: u64) -> bool {
        let slot = &mut self.slots[((addr >> 2) ^ (addr >> 9)) as usize & 63];
        if slot.0 != addr {
            *slot = (addr, symbols.is_function_start(addr));
        }
        slot.1
    }
}

#[cfg(test)]
mod guide_tests {
    use super::Guide;
    use proptest::prelude::*;

    proptest! {
        /// The guide finds what a binary search of the queries finds, for queries spread
        /// over any range (garbage addresses span all 64 bits).
        #[test]
        fn the_guide_finds_what_a_binary_search_finds(
            mut queries in prop::collection::vec(any::<u64>(), 0..200),
            near in prop::collection::vec((0usize..200, -3i64..3), 0..50),
            far in prop::collection::vec(any::<u64>(), 0..50),
            narrow in any::<bool>(),
        ) {
            if narrow {
                for q in &mut queries {
                    *q = 0xffff_ffff_8100_0000 + (*q >> 40);
                }
            }
            queries.sort_unstable();
            queries.dedup();
            let guide = Guide::new(&queries);
            let at_queries = near.iter().filter_map(|&(i, d)| {
                queries.get(i).map(|&q| q.wrapping_add_signed(d))
            });
            for addr in at_queries.chain(far).chain([0, 1, u64::MAX]) {
                prop_assert_eq!(
                    guide.first_at_or_above(&queries, addr),
                    queries.partition_point(|&q| q < addr),
                    "{:#x}", addr
                );
            }
        }
    }
}

#[cfg(test)]
mod demangle_tests {
    use super::demangle;

    #[test]
    fn rust_legacy_v0_and_cpp_names_are_demangled() {
        assert_eq!(
            demangle("_ZN4core3fmt5write17h0123456789abcdefE"),
            "core::fmt::write::h0123456789abcdef"
        );
        assert_eq!(
            demangle("_RNvNtCs1234_7mycrate3foo3bar"),
            "mycrate[3c1c0]::foo::bar"
        );
        assert_eq!(
            demangle("_ZN2ns4copyEPvPKvm"),
            "ns::copy(void*, void const*, unsigned long)"
        );
        assert_eq!(demangle("plain_c"), "plain_c");
        assert_eq!(demangle("_Znot_mangled"), "_Znot_mangled");
    }
}
