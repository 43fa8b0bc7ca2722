//! `Symbols::for_addresses` (one pass over the symbol table, keeping only what lookups of
//! the given addresses need) answers those lookups exactly as the full index does, and
//! other addresses from the full index, on random symbol tables with aliases, nesting,
//! unsized and untyped symbols.

use super::common::elfgen::*;
use extable_tool::elf::Image;
use extable_tool::symbols::{FunctionMemo, Symbols};
use proptest::prelude::*;

const BASE: u64 = 0x40_0000;

fn file(symbols: &[(u64, u64, u8)]) -> Vec<u8> {
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
    for (i, &(off, size, kind)) in symbols.iter().enumerate() {
        let section = if off < 0x2000 { text } else { data };
        let kind = [STT_FUNC, STT_OBJECT, STT_NOTYPE][kind as usize % 3];
        e.add_symbol(&format!("s{i}"), Some(section), BASE + off, size, kind);
    }
    e.build()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn one_pass_lookups_equal_the_full_index(
        symbols in prop::collection::vec((0u64..0x2800, prop_oneof![Just(0u64), 1u64..0x200], 0u8..3), 0..300),
        queries in prop::collection::vec(0u64..0x2a00, 1..60),
        others in prop::collection::vec(0u64..0x2a00, 0..20),
    ) {
        let data = file(&symbols);
        let image = Image::parse(&data).unwrap();
        let full = Symbols::new(&image);
        let queries: Vec<u64> = queries.iter().map(|q| BASE + q).collect();
        let few = Symbols::for_addresses(&image, queries.clone());
        for &q in &queries {
            prop_assert_eq!(full.describe(q), few.describe(q), "describe {:#x}", q);
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
