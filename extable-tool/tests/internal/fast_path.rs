//! The fast path of `check` and `sort` (`extable_tool::records`) against the simple one
//! (`check::check_simple`): on random tables of every relative layout, class and byte
//! order, with entries that trip every rule, duplicates, sorted and shuffled orders, and
//! the work split in one or two threads, tiny chunks and tiny buckets, the reports (every
//! finding, in order), the number of entries moved and the sorted table's bytes are equal.

use super::common::elfgen::*;
use super::common::synth::*;
use extable_tool::analysis::Analysis;
use extable_tool::check::{self, Checked};
use extable_tool::elf::Image;
use extable_tool::records::Tuning;
use extable_tool::symbols::{CodeMemo, FunctionMemo, Symbols};
use extable_tool::Layout;
use proptest::prelude::*;

const LAYOUTS: [Layout; 7] = [
    Layout::Extable,
    Layout::LinuxX86,
    Layout::LinuxX86Legacy,
    Layout::LinuxArm64,
    Layout::LinuxS390,
    Layout::LinuxPowerpc,
    // Not taken by the fast path: checks that the fallback gives the same.
    Layout::Absolute,
];

/// An address of some kind: in a function, in the fixup section, at a function start, a
/// handler, outside every executable section, far away, or one of a few (duplicates).
fn address(kind: u8, x: u16, near: u64) -> u64 {
    let x = u64::from(x);
    match kind % 12 {
        0..=3 => TEXT + x % (FUNCS * FUNC_SIZE),
        4 => (near & !(FUNC_SIZE - 1)) + x % FUNC_SIZE,
        5 => FIXUP_TEXT + x % 0x1000,
        6 => TEXT + (x % FUNCS) * FUNC_SIZE,
        7 => [HANDLER0, HANDLER1][x as usize % 2],
        8 => [RODATA, DATA + 4, TABLE, 0][x as usize % 4] + x % 8,
        9 => TEXT + 4 * (x % 3),
        10 => near,
        _ => [0x7fff_0000_0000, 0x1_0000_0000, 0xffff_ffff_ffff_0000][x as usize % 3],
    }
}

fn spec(layout: Layout, (a, b, c, x, y, z): (u8, u8, u8, u16, u16, u16)) -> Spec {
    // Far addresses (kind 11) only now and then.
    let tame = |k: u8| if k % 12 == 11 && x % 8 != 0 { 0 } else { k };
    let insn = address(tame(a), x, TEXT);
    let fixup = address(tame(b), y, insn);
    let third = match layout {
        Layout::Extable | Layout::LinuxX86Legacy => {
            ThirdSpec::Handler(address(tame(c.wrapping_add(6)), z, insn))
        }
        Layout::LinuxPowerpc | Layout::Absolute => ThirdSpec::None,
        _ => ThirdSpec::Data((c % 24) as u16, z),
    };
    Spec { insn, fixup, third }
}

/// Check `program` with `checker`, returning the check and the sorted table's bytes.
fn run(
    program: &Program,
    layout: Layout,
    checker: impl Fn(&Analysis<'_, '_>) -> Checked,
) -> (
    Checked,
    Result<Option<Vec<u8>>, extable_tool::table::Overflow>,
) {
    let bytes = program.build();
    let image = Image::parse(&bytes).expect("parse");
    let a = Analysis::new(&image, Some(layout)).expect("analysis");
    let mut checked = checker(&a);
    let sorted = checked.take_sorted_bytes(&a.table);
    (checked, sorted)
}

fn compare(program: &Program, layout: Layout) {
    let (simple, simple_bytes) = run(program, layout, |a| check::check_simple(a, "f"));
    let n = program.specs.len();
    let tunings = [
        Tuning::default(),
        Tuning {
            chunk: 7,
            bucket_log: 1,
        },
        Tuning {
            chunk: 5,
            bucket_log: 2,
        },
        Tuning {
            chunk: 64,
            bucket_log: 0,
        },
    ];
    for tuning in tunings {
        let (fast, fast_bytes) = run(program, layout, |a| check::check_tuned(a, "f", tuning));
        let what = format!(
            "{layout} is64={} big={} n={n} {tuning:?}",
            program.is64, program.big
        );
        assert_eq!(fast.report, simple.report, "{what}: reports differ");
        assert_eq!(fast.moved, simple.moved, "{what}: moved differs");
        assert!(fast_bytes == simple_bytes, "{what}: sorted bytes differ");
    }
    // Not kept by the check: computed again when asked for.
    let (lean, lean_bytes) = run(program, layout, |a| {
        check::check_with(a, "f", &extable_tool::records::Keep, false)
    });
    assert_eq!(lean.report, simple.report);
    assert!(
        lean_bytes == simple_bytes,
        "{layout}: bytes not kept differ"
    );
}

fn program(
    layout: Layout,
    class: u8,
    raw: &[(u8, u8, u8, u16, u16, u16)],
    order: u8,
    marker: u8,
) -> Program {
    let (is64, big) =
        [(true, false), (false, false), (true, true), (false, true)][class as usize % 4];
    let mut specs: Vec<Spec> = raw.iter().map(|&r| spec(layout, r)).collect();
    match order % 3 {
        // Sorted by insn (the in-place walk), sometimes with one entry out of place.
        0 => specs.sort_by_key(|s| s.insn),
        1 => {
            specs.sort_by_key(|s| s.insn);
            if specs.len() > 2 {
                let last = specs.pop().unwrap();
                specs.insert(specs.len() / 2, last);
            }
        }
        _ => {}
    }
    let mut p = Program::new(layout, is64, big, specs);
    match marker % 3 {
        0 => p = p.marker_value(0),
        1 => {}
        _ => p.marker = None,
    }
    p
}

fn raw_entries(max: usize) -> impl Strategy<Value = Vec<(u8, u8, u8, u16, u16, u16)>> {
    prop::collection::vec(any::<(u8, u8, u8, u16, u16, u16)>(), 0..max)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn the_fast_path_equals_the_simple_one(
        layout in 0usize..LAYOUTS.len(),
        class in 0u8..4,
        raw in raw_entries(300),
        order in 0u8..3,
        marker in 0u8..3,
    ) {
        let layout = LAYOUTS[layout];
        compare(&program(layout, class, &raw, order, marker), layout);
    }

    #[test]
    fn clean_tables_take_the_fast_path_and_sort_alike(
        layout in 0usize..LAYOUTS.len() - 1,
        class in 0u8..4,
        n in 0usize..400,
        seed in any::<u64>(),
    ) {
        let layout = LAYOUTS[layout];
        let specs = shuffled(&sorted_specs(layout, n.min(4 * FUNCS as usize)), seed);
        let (is64, big) = [(true, false), (false, false), (true, true), (false, true)][class as usize];
        compare(&Program::new(layout, is64, big, specs), layout);
    }
}

/// Thousands of entries with the default tuning and with two threads, many chunks and
/// many buckets, shuffled and with one key repeated.
#[test]
fn larger_tables_equal_the_simple_path() {
    for layout in [Layout::Extable, Layout::LinuxX86, Layout::LinuxPowerpc] {
        let mut specs = sorted_specs(layout, 4 * FUNCS as usize);
        let mut x = 7u64;
        let extra: Vec<Spec> = (0..5000)
            .map(|k| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut s = specs[(x % specs.len() as u64) as usize];
                if k % 97 != 0 {
                    s.insn = TEXT + (x >> 20) % (FUNCS * FUNC_SIZE);
                }
                s
            })
            .collect();
        specs.extend(extra);
        let program = Program::new(layout, true, false, shuffled(&specs, 3));
        compare(&program, layout);
        let n = specs.len();
        let (simple, simple_bytes) = run(&program, layout, |a| check::check_simple(a, "f"));
        let tuning = Tuning {
            chunk: 700,
            bucket_log: 3,
        };
        let (fast, fast_bytes) = run(&program, layout, |a| check::check_tuned(a, "f", tuning));
        assert_eq!(fast.report, simple.report, "{layout} n={n}");
        assert_eq!(fast.moved, simple.moved);
        assert!(fast_bytes == simple_bytes, "{layout}: sorted bytes differ");
    }
}

/// The memoised lookups of the walk answer as the plain ones, for addresses in ascending,
/// descending and random order, with nested, overlapping, adjacent and unsized functions
/// and adjacent, overlapping and fixup code sections.
#[test]
fn memoised_lookups_equal_the_plain_ones() {
    let mut e = Elf::new(true, false, EM_X86_64);
    let text = e.add_section(Sec::progbits(
        ".text",
        SHF_ALLOC | SHF_EXECINSTR,
        0x1000,
        vec![0; 0x1000],
    ));
    let more = e.add_section(Sec::progbits(
        ".text.more",
        SHF_ALLOC | SHF_EXECINSTR,
        0x2000,
        vec![0; 0x800],
    ));
    e.add_section(Sec::progbits(
        ".text.fixup",
        SHF_ALLOC | SHF_EXECINSTR,
        0x2400,
        vec![0; 0x800],
    ));
    e.add_section(Sec::progbits(".rodata", SHF_ALLOC, 0x3000, vec![0; 0x100]));
    e.add_section(Sec::progbits(
        ".text.far",
        SHF_ALLOC | SHF_EXECINSTR,
        0x9000,
        vec![0; 0x100],
    ));
    let funcs: [(u64, u64); 9] = [
        (0x1000, 0x100),
        (0x1040, 0x20),  // nested
        (0x1050, 0x80),  // overlaps the end of the one it is nested in
        (0x1100, 0x100), // adjacent
        (0x1100, 0x40),  // same start
        (0x1300, 0),     // unsized
        (0x1400, 0x800), // runs past the section
        (0x1410, 0x10),
        (0x2000, 0x10),
    ];
    for (k, &(addr, size)) in funcs.iter().enumerate() {
        let sec = if addr < 0x2000 { text } else { more };
        e.add_symbol(&format!("f{k}"), Some(sec), addr, size, STT_FUNC);
    }
    let bytes = e.build();
    let image = Image::parse(&bytes).unwrap();
    let symbols = Symbols::new(&image);
    let mut x = 99u64;
    let mut random: Vec<u64> = (0..4000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            0xf00 + x % 0x8400
        })
        .collect();
    let mut ascending = random.clone();
    ascending.sort_unstable();
    let descending: Vec<u64> = ascending.iter().rev().copied().collect();
    random.extend([
        0,
        u64::MAX,
        0x1000,
        0x1fff,
        0x2000,
        0x23ff,
        0x2400,
        0x2c00,
        0x9000,
    ]);
    for order in [&ascending, &descending, &random] {
        let (mut code, mut funcs) = (CodeMemo::default(), FunctionMemo::default());
        for &addr in order {
            let plain = symbols
                .code_section(addr)
                .map(|_| symbols.in_fixup_section(addr));
            assert_eq!(code.lookup(&symbols, addr), plain, "code at {addr:#x}");
            assert_eq!(
                funcs.containing(&symbols, addr),
                symbols.function_containing(addr),
                "function at {addr:#x}"
            );
        }
    }
}
