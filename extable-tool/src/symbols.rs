//! Addresses to `symbol+offset`, the function that contains an address, and the code
//! sections of a file.

use std::collections::VecDeque;
use std::sync::OnceLock;

use crate::elf::{Image, Section, Symbol};

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
    /// The symbols lookups search.
    index: Index,
    /// Loaded executable sections, by address: (start, end, section index).
    code: Vec<(u64, u64, usize)>,
    /// For [`Symbols::for_addresses`]: the addresses `index` is exact for (sorted), and the
    /// index of every symbol, built on the first lookup of another address.
    only: Option<(Vec<u64>, OnceLock<Index>)>,
    /// Whether names are demangled in [`Self::describe`].
    demangle: bool,
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

    fn function_range(&self) -> Option<(u64, u64)> {
        (self.function && self.size > 0).then(|| (self.addr, self.addr.saturating_add(self.size)))
    }
}

/// Symbol `symbol`, `s`, as lookups see it, if it is a function, object or untyped symbol
/// in a section (whatever its name: see [`is_noise`]).
#[inline]
fn typed_candidate(machine: u16, symbol: usize, s: &Symbol<'_>) -> Option<Candidate> {
    let untyped = s.kind == object::elf::STT_NOTYPE.0;
    if !(s.is_function() || s.is_object() || untyped) {
        return None;
    }
    let section = s.section?;
    let addr = if s.is_function() {
        crate::arch::code_address(machine, s.value)
    } else {
        s.value
    };
    Some(Candidate {
        named: Named {
            addr,
            size: s.size,
            symbol,
            section,
            function: s.is_function(),
        },
        raw: s.value,
    })
}

/// The function, object and untyped symbols of `image` that have a name worth printing.
fn candidates<'a>(image: &'a Image<'_>) -> impl Iterator<Item = Candidate> + 'a {
    let machine = image.machine;
    image
        .symbols
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(move |(symbol, s)| {
            typed_candidate(machine, symbol, &s).filter(|_| !is_noise(s.name_start()))
        })
}

/// Keep the `k` greatest items by `key` in `items`, which is kept in ascending order (a
/// handful: rejecting what is not above the least is one compare).
fn keep_greatest<T, K: Ord>(items: &mut VecDeque<T>, item: T, k: usize, key: impl Fn(&T) -> K) {
    let new = key(&item);
    if items.len() == k {
        if new <= key(&items[0]) {
            return;
        }
        items.pop_front();
    }
    // Symbol tables are mostly in address order: the new item is usually the greatest.
    if items.back().is_none_or(|last| key(last) < new) {
        items.push_back(item);
        return;
    }
    let at = items.partition_point(|x| key(x) < new);
    items.insert(at, item);
}

/// The index of the first of the ascending `queries` at or above `addr` (`queries.len()`
/// when none is), trying `hint` first: symbol tables are mostly in address order.
fn bucket_of(queries: &[u64], addr: u64, hint: usize) -> usize {
    let above_previous = hint == 0 || queries.get(hint - 1).is_some_and(|&q| q < addr);
    if above_previous && queries.get(hint).is_some_and(|&q| addr <= q) {
        return hint;
    }
    queries.partition_point(|&q| q < addr)
}

/// How many symbols at or below an address [`Symbols::describe`] looks at.
const DESCRIBE_NEIGHBOURS: usize = 8;
/// How many functions starting at or below an address [`Symbols::function_containing`]
/// looks at (nested or overlapping aliases).
const FUNCTION_NEIGHBOURS: usize = 4;

impl<'i, 'd> Symbols<'i, 'd> {
    /// Index every symbol and the sections of `image`, to answer lookups of any address.
    pub fn new(image: &'i Image<'d>) -> Self {
        Self::from_parts(image, Index::of_all(image), None)
    }

    /// Keep, in one pass over the symbol table, only the symbols that lookups of the
    /// addresses in `queries` can return: for each query, the few greatest symbols and
    /// functions at or below it and above the query before it, and the function starts it
    /// equals. Lookups of those addresses answer from what was kept; a lookup of any other
    /// address builds the full index ([`Symbols::new`]) once and answers from it, so every
    /// answer is the full index's. For files with many symbols and a table of a few hundred
    /// entries this avoids sorting the whole symbol table. ([`FunctionCursor`] and
    /// [`FunctionMemo`] answer from what was kept: walk them over queried addresses only.)
    #[cfg(test)]
    pub fn for_addresses(image: &'i Image<'d>, queries: Vec<u64>) -> Self {
        Self::for_addresses_visiting(image, queries, |_| {})
    }

    /// [`Self::for_addresses`], calling `visit` on every symbol but symbol 0, in table
    /// order, in the same pass.
    pub fn for_addresses_visiting(
        image: &'i Image<'d>,
        mut queries: Vec<u64>,
        mut visit: impl FnMut(&Symbol<'d>),
    ) -> Self {
        queries.sort_unstable();
        queries.dedup();
        // Bucket j holds what starts in (queries[j - 1], queries[j]].
        let mut named_near: Vec<VecDeque<Named>> = vec![VecDeque::new(); queries.len()];
        let mut functions_near: Vec<VecDeque<(u64, u64)>> = vec![VecDeque::new(); queries.len()];
        let mut function_starts = Vec::new();
        let mut j = 0;
        for (symbol, s) in image.symbols.iter().enumerate().skip(1) {
            visit(&s);
            let Some(c) = typed_candidate(image.machine, symbol, &s) else {
                continue;
            };
            let n = c.named;
            j = bucket_of(&queries, n.addr, j);
            if j == queries.len() {
                j = 0;
                continue; // above every query
            }
            if is_noise(s.name_start()) {
                continue;
            }
            if n.function {
                // queries[j] is the least query at or above the start: a query equals the
                // start only if it is that one. The raw value differs only by an ISA bit.
                if queries[j] == n.addr {
                    function_starts.push(n.addr);
                }
                if c.raw != n.addr && queries.binary_search(&c.raw).is_ok() {
                    function_starts.push(c.raw);
                }
            }
            if let Some(f) = n.function_range() {
                keep_greatest(&mut functions_near[j], f, FUNCTION_NEIGHBOURS, |f| *f);
            }
            keep_greatest(&mut named_near[j], n, DESCRIBE_NEIGHBOURS, Named::key);
        }
        let named = named_near.into_iter().flatten().collect();
        let functions = functions_near.into_iter().flatten().collect();
        let index = Index::new(named, functions, function_starts);
        Self::from_parts(image, index, Some((queries, OnceLock::new())))
    }

    /// The index that is exact for `addr`: the one kept, or that of every symbol.
    fn index_for(&self, addr: u64) -> &Index {
        match &self.only {
            Some((queries, all)) if queries.binary_search(&addr).is_err() => {
                all.get_or_init(|| Index::of_all(self.image))
            }
            _ => &self.index,
        }
    }

    fn from_parts(
        image: &'i Image<'d>,
        index: Index,
        only: Option<(Vec<u64>, OnceLock<Index>)>,
    ) -> Self {
        let mut code: Vec<_> = image
            .sections
            .iter()
            .filter(|s| s.is_code() && s.size > 0)
            .map(|s| (s.addr, s.addr.saturating_add(s.size), s.index))
            .collect();
        code.sort_unstable();
        Symbols {
            image,
            index,
            code,
            only,
            demangle: true,
        }
    }

    /// Print names as they are in `.symtab` (`false`) or demangled (`true`, the default).
    pub fn set_demangle(&mut self, on: bool) {
        self.demangle = on;
    }

    /// `name+0xoff` (or `name`) for the symbol that covers `addr` (a sized symbol around it,
    /// or the nearest unsized one below it in the same section), else `section+0xoff` for
    /// the loaded section that contains it, else `0x...`.
    pub fn describe(&self, addr: u64) -> String {
        let named = &self.index_for(addr).named;
        let at = named.partition_point(|n| n.addr <= addr);
        let covers = |n: &Named| {
            if n.size > 0 {
                addr - n.addr < n.size
            } else {
                self.image.sections[n.section].contains(addr) || addr == n.addr
            }
        };
        let found = named[..at]
            .iter()
            .rev()
            .take(DESCRIBE_NEIGHBOURS)
            .find(|n| covers(n));
        if let Some(n) = found {
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
        let named = &self.index_for(addr).named;
        let at = named.partition_point(|n| n.addr <= addr);
        at.checked_sub(1).map(|k| named[k].addr)
    }

    /// The function (start, end) that contains `addr`.
    pub fn function_containing(&self, addr: u64) -> Option<(u64, u64)> {
        let index = self.index_for(addr);
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
        self.index_for(addr)
            .function_starts
            .binary_search(&addr)
            .is_ok()
    }

    /// The loaded executable section containing `addr`.
    pub fn code_section(&self, addr: u64) -> Option<&'i Section<'d>> {
        let at = self.code.partition_point(|c| c.0 <= addr);
        let (_, end, index) = *self.code[..at].last()?;
        (addr < end).then(|| &self.image.sections[index])
    }

    /// Whether `addr` is in a section that holds fixup code (`.fixup`, `.text.fixup`, ...).
    pub fn in_fixup_section(&self, addr: u64) -> bool {
        self.code_section(addr).is_some_and(is_fixup_section)
    }

    /// The addresses the loaded executable sections span: the lowest start and the highest
    /// end, or `None` when there is none.
    pub fn code_range(&self) -> Option<(u64, u64)> {
        let lo = self.code.first()?.0;
        let hi = self.code.iter().map(|c| c.1).max()?;
        Some((lo, hi))
    }

    /// Whether the file has any loaded executable section.
    pub fn has_code(&self) -> bool {
        !self.code.is_empty()
    }
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
        // The same search as `code_section`: the last section starting at or below `addr`.
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
        let f = &symbols.index.functions;
        if addr < self.lo || (self.at > 0 && f[self.at - 1].0 > addr) {
            self.at = f.partition_point(|x| x.0 <= addr);
        } else {
            while self.at < f.len() && f[self.at].0 <= addr {
                self.at += 1;
            }
        }
        let found = symbols.index.containing_below(self.at, addr);
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
        let f = &self.symbols.index.functions;
        if self.at > 0 && f[self.at - 1].0 > addr {
            self.at = f.partition_point(|x| x.0 <= addr);
        } else {
            while self.at < f.len() && f[self.at].0 <= addr {
                self.at += 1;
            }
        }
        self.symbols.index.containing_below(self.at, addr)
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
