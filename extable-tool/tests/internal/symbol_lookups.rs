//! `Symbols::for_addresses` (one pass over the symbol table, keeping only what lookups of
//! the given addresses need) answers those lookups exactly as the full index does, and
//! other addresses from the full index, on random symbol tables with aliases, nesting,
//! unsized and untyped symbols and names lookups skip; and the symbol table read in place
//! decodes every symbol as the `object` crate does.

use super::common::elfgen::*;
use extable_tool::elf::Image;
use extable_tool::symbols::{FunctionMemo, Symbols};
use proptest::prelude::*;

const BASE: u64 = 0x40_0000;

/// A file with `symbols` (offset, size, type) over 0x2800 bytes of text and data, every
/// offset and size times `scale`.
fn file(symbols: &[(u64, u64, u8)], scale: u64) -> Vec<u8> {
    let mut e = Elf::new(true, false, EM_X86_64);
    let text = e.add_section(Sec::progbits(
        ".text",
        SHF_ALLOC | SHF_EXECINSTR,
        BASE,
        vec![0xcc; (0x2000 * scale) as usize],
    ));
    let data = e.add_section(Sec::progbits(
        ".data",
        SHF_ALLOC | SHF_WRITE,
        BASE + 0x2000 * scale,
        vec![0; (0x800 * scale) as usize],
    ));
    for (i, &(off, size, kind)) in symbols.iter().enumerate() {
        let (off, size) = (off * scale, size * scale);
        let section = if off < 0x2000 * scale { text } else { data };
        let kind = [STT_FUNC, STT_OBJECT, STT_NOTYPE][kind as usize % 3];
        // Some names lookups skip: local labels, mapping symbols, no name.
        let name = match i % 13 {
            3 => format!(".L{i}"),
            7 => "$x".to_string(),
            11 => String::new(),
            _ => format!("s{i}"),
        };
        e.add_symbol(&name, Some(section), BASE + off, size, kind);
    }
    e.build()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn one_pass_lookups_equal_the_full_index(
        symbols in prop::collection::vec((0u64..0x2800, prop_oneof![Just(0u64), 1u64..0x200], 0u8..3), 0..300),
        queries in prop::collection::vec(0u64..0x2a00, 0..60),
        others in prop::collection::vec(0u64..0x2a00, 0..20),
        described in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        scale in prop_oneof![Just(1u64), Just(97)],
    ) {
        let data = file(&symbols, scale);
        let image = Image::parse(&data).unwrap();
        let full = Symbols::new(&image);
        let queries: Vec<u64> = queries.iter().map(|q| BASE + q * scale).collect();
        let others: Vec<u64> = others.iter().map(|q| q * scale).collect();
        let few = Symbols::for_addresses(&image, queries.clone());
        // A few queries named in the first pass; the others by the second.
        let described: Vec<u64> = if queries.is_empty() {
            Vec::new()
        } else {
            described.iter().map(|i| queries[i.index(queries.len())]).collect()
        };
        let first = Symbols::for_addresses_visiting(&image, queries.clone(), described.clone(), |_| {});
        for &q in &described {
            prop_assert_eq!(full.describe(q), first.describe(q), "described {:#x}", q);
            prop_assert_eq!(full.named_at_or_below(q), first.named_at_or_below(q));
        }
        prop_assert!(!first.found_named_symbols());
        for &q in &queries {
            prop_assert_eq!(full.describe(q), first.describe(q), "after described {:#x}", q);
            prop_assert_eq!(full.describe(q), few.describe(q), "describe {:#x}", q);
            prop_assert_eq!(full.named_at_or_below(q), few.named_at_or_below(q));
            prop_assert_eq!(full.function_containing(q), few.function_containing(q));
            prop_assert_eq!(full.is_function_start(q), few.is_function_start(q));
            let (mut a, mut b) = (full.function_cursor(), few.function_cursor());
            prop_assert_eq!(a.containing(q), b.containing(q));
        }
        // Addresses that were not asked for are answered from the index of every symbol.
        for q in others.iter().map(|q| BASE + q) {
            prop_assert_eq!(full.describe(q), few.describe(q), "describe {:#x}", q);
            prop_assert_eq!(full.function_containing(q), few.function_containing(q));
            prop_assert_eq!(full.is_function_start(q), few.is_function_start(q));
        }
        // The memo and the cursor over the addresses in ascending order, as the checks walk.
        let mut sorted = queries.clone();
        sorted.sort_unstable();
        let (mut ma, mut mb) = (FunctionMemo::default(), FunctionMemo::default());
        let (mut a, mut b) = (full.function_cursor(), few.function_cursor());
        for &q in &sorted {
            prop_assert_eq!(ma.containing(&full, q), mb.containing(&few, q), "memo {:#x}", q);
            prop_assert_eq!(a.containing(q), b.containing(q), "cursor {:#x}", q);
        }
    }
}

/// In code where every function has a sized symbol, the lookups of the queried addresses
/// answer from the passes over the queries: the symbol table is never sorted, whatever
/// mapping symbols and local labels lie between the functions and the queries.
#[test]
fn lookups_inside_sized_functions_need_no_index_of_every_symbol() {
    let mut e = Elf::new(true, false, EM_X86_64);
    let text = e.add_section(Sec::progbits(
        ".text",
        SHF_ALLOC | SHF_EXECINSTR,
        BASE,
        vec![0xcc; 0x2000],
    ));
    let data = e.add_section(Sec::progbits(
        ".data",
        SHF_ALLOC | SHF_WRITE,
        BASE + 0x2000,
        vec![0; 0x800],
    ));
    for f in 0..32u64 {
        e.add_symbol(
            &format!("f{f}"),
            Some(text),
            BASE + f * 0x100,
            0x100,
            STT_FUNC,
        );
        // Mapping symbols and local labels inside the function, above some queries.
        e.add_symbol("$x", Some(text), BASE + f * 0x100 + 0x40, 0, STT_NOTYPE);
        e.add_symbol(".L1", Some(text), BASE + f * 0x100 + 0x70, 0, STT_NOTYPE);
    }
    e.add_symbol("object", Some(data), BASE + 0x2100, 8, STT_OBJECT);
    let data = e.build();
    let image = Image::parse(&data).unwrap();
    let full = Symbols::new(&image);
    let queries: Vec<u64> = (0..32u64)
        .flat_map(|f| {
            [
                BASE + f * 0x100,
                BASE + f * 0x100 + 0x10,
                BASE + f * 0x100 + 0x80,
            ]
        })
        .chain([BASE + 0x2104])
        .collect();
    let few = Symbols::for_addresses(&image, queries.clone());
    let mut memo = FunctionMemo::default();
    for &q in &queries {
        assert_eq!(full.function_containing(q), few.function_containing(q));
        assert_eq!(memo.containing(&few, q), full.function_containing(q));
        assert_eq!(full.is_function_start(q), few.is_function_start(q));
    }
    // What the rules ask of a clean table needs functions only: the named symbols below
    // the queries, which only messages need, are found when first asked for.
    assert!(!few.found_named_symbols());
    for &q in &queries {
        assert_eq!(full.describe(q), few.describe(q), "describe {q:#x}");
        assert_eq!(full.named_at_or_below(q), few.named_at_or_below(q));
    }
    assert!(few.found_named_symbols());
    assert!(!few.indexed_every_symbol());
    // Addresses named in the first pass (above a mapping symbol and a local label in
    // their function) are answered from it: no second pass, no index.
    let described: Vec<u64> = (0..32u64).map(|f| BASE + f * 0x100 + 0x80).collect();
    let first = Symbols::for_addresses_visiting(&image, queries.clone(), described.clone(), |_| {});
    for &q in &described {
        assert_eq!(full.describe(q), first.describe(q), "described {q:#x}");
    }
    assert!(!first.found_named_symbols());
    assert!(!first.indexed_every_symbol());
    // Any other address is answered from the index of every symbol.
    assert_eq!(few.describe(BASE + 0x18), full.describe(BASE + 0x18));
    assert!(few.indexed_every_symbol());
}

/// A described address is named by the last of several aliases below it, as the index of
/// every symbol names it, also when the first alias already set the least address the pass
/// keeps a symbol at (the symbols below it are passed over unread).
#[test]
fn the_last_alias_names_a_described_address() {
    let mut e = Elf::new(true, false, EM_X86_64);
    let text = e.add_section(Sec::progbits(
        ".text",
        SHF_ALLOC | SHF_EXECINSTR,
        BASE,
        vec![0xcc; 0x200],
    ));
    e.add_symbol("below", Some(text), BASE + 0x40, 0, STT_NOTYPE);
    e.add_symbol("first", Some(text), BASE + 0x80, 0, STT_OBJECT);
    e.add_symbol("second", Some(text), BASE + 0x80, 0, STT_NOTYPE);
    e.add_symbol("lower", Some(text), BASE + 0x60, 0, STT_NOTYPE);
    let data = e.build();
    let image = Image::parse(&data).unwrap();
    let full = Symbols::new(&image);
    let q = BASE + 0x100;
    let first = Symbols::for_addresses_visiting(&image, vec![q], vec![q], |_| {});
    assert_eq!(full.describe(q), "second+0x80");
    assert_eq!(first.describe(q), full.describe(q));
    assert!(!first.found_named_symbols());
}

/// Every symbol of 32- and 64-bit, little- and big-endian files, as `Image` decodes it in
/// place, equals the `object` crate's reading: name, value, size, section.
#[test]
fn symbols_read_in_place_equal_the_object_crate() {
    use super::common::synth::{sorted_specs, Program};
    use extable_tool::Layout;
    use object::read::elf::{ElfFile32, ElfFile64, FileHeader};
    use object::{Object, ObjectSymbol, SymbolIndex};
    fn compare<H: FileHeader<Endian = object::Endianness>>(
        image: &Image<'_>,
        file: &object::read::elf::ElfFile<'_, H>,
    ) {
        assert!(image.symbols.len() > 3);
        for i in 1..image.symbols.len() {
            let ours = image.symbols.get(i);
            let theirs = file.symbol_by_index(SymbolIndex(i)).unwrap();
            assert_eq!(ours.name(), theirs.name_bytes().unwrap(), "symbol {i}");
            assert!(ours.name_is(theirs.name_bytes().unwrap()));
            assert_eq!(ours.value, theirs.address(), "symbol {i}");
            assert_eq!(ours.size, theirs.size(), "symbol {i}");
            assert_eq!(
                ours.section,
                theirs.section_index().map(|s| s.0),
                "symbol {i}"
            );
        }
    }
    for (layout, is64, big) in [
        (Layout::LinuxX86, true, false),
        (Layout::Absolute, false, false),
        (Layout::LinuxS390, true, true),
        (Layout::Absolute, false, true),
    ] {
        let data = Program::new(layout, is64, big, sorted_specs(layout, 8)).build();
        let image = Image::parse(&data).unwrap();
        if is64 {
            compare(
                &image,
                &ElfFile64::<object::Endianness>::parse(&*data).unwrap(),
            );
        } else {
            compare(
                &image,
                &ElfFile32::<object::Endianness>::parse(&*data).unwrap(),
            );
        }
    }
}

/// An unsorted table's report names its first pair out of order: the pass over the symbol
/// table that finds the functions names those two as well, and no second pass runs.
#[test]
fn an_unsorted_tables_note_needs_no_second_pass() {
    use super::common::synth::{shuffled, sorted_specs, Program};
    use extable_tool::analysis::Analysis;
    use extable_tool::Layout;

    let specs = shuffled(&sorted_specs(Layout::LinuxX86, 40), 7);
    let bytes = Program::new(Layout::LinuxX86, true, false, specs).build();
    let image = Image::parse(&bytes).unwrap();
    let a = Analysis::new(&image, None).unwrap();
    let checked = extable_tool::check::check(&a, "f");
    let note = checked
        .report
        .findings
        .iter()
        .find(|f| f.rule == "not-sorted-yet");
    assert!(note.is_some_and(|n| n.message.contains("<f")), "{note:?}");
    assert!(!a.symbols.found_named_symbols());
    assert!(!a.symbols.indexed_every_symbol());
}
