//! Property tests of sort and search against naive references, on random tables laid out in
//! real memory: duplicates, negative offsets, offsets near the `i32` limits, empty and
//! one-entry tables.

use extable_runtime::entry::{ExceptionTableEntry, Targets, ENTRY_SIZE};
use extable_runtime::search::{search, search_linear, search_linux};
use extable_runtime::sort::{is_sorted, sort, SortError};
use proptest::prelude::*;

/// A field value: mostly small offsets of both signs, sometimes near the `i32` limits.
fn offset() -> impl Strategy<Value = i32> {
    prop_oneof![
        6 => -4096i32..4096,
        2 => any::<i32>(),
        1 => (i32::MAX - 64)..=i32::MAX,
        1 => i32::MIN..=(i32::MIN + 64),
    ]
}

/// One raw entry: its field values, and maybe "copy the targets of an earlier entry"
/// (the index) with a flag that makes the copy a conflict.
type RawEntry = ([i32; 3], Option<(prop::sample::Index, bool)>);

/// Raw field triples, and for each entry optionally the index of an earlier entry whose
/// targets it copies (a duplicate), with a flag for "same insn, other fixup" (a conflict).
/// Half the tables use small offsets only, so that most of them can be sorted; the other
/// half mixes in offsets near the limits, so that the overflow refusal is exercised.
fn raw_table() -> impl Strategy<Value = Vec<RawEntry>> {
    let dup = || prop::option::weighted(0.3, (any::<prop::sample::Index>(), any::<bool>()));
    let small = || -65536i32..65536;
    prop_oneof![
        prop::collection::vec(([small(), small(), small()], dup()), 0..48),
        prop::collection::vec(([offset(), offset(), offset()], dup()), 0..48),
    ]
}

/// Lay the raw table out in memory; duplicates re-encode an earlier entry's targets at their
/// own slot (skipped when out of reach).
fn build(raw: &[RawEntry]) -> Vec<ExceptionTableEntry> {
    let mut table: Vec<ExceptionTableEntry> = raw
        .iter()
        .map(|(f, _)| ExceptionTableEntry {
            insn: f[0],
            fixup: f[1],
            handler: f[2],
        })
        .collect();
    for i in 0..table.len() {
        let Some((earlier, conflict)) = raw[i].1 else {
            continue;
        };
        if i == 0 {
            continue;
        }
        let mut t = table[earlier.index(i)].targets();
        if conflict {
            t.fixup = t.fixup.wrapping_add(4);
        }
        let at = table.as_ptr() as usize + i * ENTRY_SIZE;
        if let Some([insn, fixup, handler]) = ExceptionTableEntry::encode(at, t) {
            table[i] = ExceptionTableEntry {
                insn,
                fixup,
                handler,
            };
        }
    }
    table
}

fn targets(table: &[ExceptionTableEntry]) -> Vec<Targets> {
    table.iter().map(ExceptionTableEntry::targets).collect()
}

/// Naive movability: every entry encodable at every slot.
fn movable(table: &[ExceptionTableEntry]) -> bool {
    let base = table.as_ptr() as usize;
    table.iter().all(|e| {
        (0..table.len()).all(|slot| {
            ExceptionTableEntry::encode(base + slot * ENTRY_SIZE, e.targets()).is_some()
        })
    })
}

/// Addresses worth probing: every insn, its neighbours, and a few random ones.
fn probes(table: &[ExceptionTableEntry], extra: &[usize]) -> Vec<usize> {
    let mut p: Vec<usize> = table
        .iter()
        .flat_map(|e| {
            [
                e.insn_addr().wrapping_sub(1),
                e.insn_addr(),
                e.insn_addr().wrapping_add(1),
            ]
        })
        .collect();
    p.extend_from_slice(extra);
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sort_orders_by_insn_and_keeps_every_target(raw in raw_table()) {
        let mut table = build(&raw);
        let before = targets(&table);
        let before_fields: Vec<[i32; 3]> = table.iter().map(|e| [e.insn, e.fixup, e.handler]).collect();
        match sort(&mut table) {
            Ok(()) => {
                prop_assert!(movable_after_sort(&before, &table));
                prop_assert!(is_sorted(&table));
                let mut expected = before.clone();
                expected.sort();
                let mut got = targets(&table);
                got.sort();
                prop_assert_eq!(got, expected);
            }
            Err(SortError::OffsetOverflow { index }) => {
                let after: Vec<[i32; 3]> = table.iter().map(|e| [e.insn, e.fixup, e.handler]).collect();
                prop_assert_eq!(after, before_fields, "a refused sort writes nothing");
                prop_assert!(!movable(&table), "refused entry {} although every entry can move", index);
            }
        }
    }

    #[test]
    fn search_matches_a_linear_reference(raw in raw_table(), extra in prop::collection::vec(any::<usize>(), 4)) {
        let mut table = build(&raw);
        // Unsorted: the linear search must match the reference too.
        for addr in probes(&table, &extra) {
            let reference = table.iter().any(|e| e.insn_addr() == addr);
            prop_assert_eq!(search_linear(&table, addr).map(|e| e.insn_addr()), reference.then_some(addr));
        }
        if sort(&mut table).is_err() {
            return Ok(());
        }
        for addr in probes(&table, &extra) {
            let reference = table.iter().any(|e| e.insn_addr() == addr);
            let fast = search(&table, addr);
            prop_assert_eq!(fast.map(|e| e.insn_addr()), reference.then_some(addr));
            prop_assert_eq!(search_linux(&table, addr).map(|e| e.insn_addr()), reference.then_some(addr));
        }
    }
}

/// Sorting succeeded only if the reference says every entry could move.
fn movable_after_sort(before: &[Targets], table: &[ExceptionTableEntry]) -> bool {
    let base = table.as_ptr() as usize;
    before.iter().all(|t| {
        (0..table.len())
            .all(|slot| ExceptionTableEntry::encode(base + slot * ENTRY_SIZE, *t).is_some())
    })
}

#[test]
fn empty_and_single_entry_tables() {
    let mut empty: [ExceptionTableEntry; 0] = [];
    assert_eq!(sort(&mut empty), Ok(()));
    assert!(search(&empty, 0).is_none());
    let mut one = [ExceptionTableEntry {
        insn: 0x40,
        fixup: 0x80,
        handler: -8,
    }];
    let insn = one[0].insn_addr();
    assert_eq!(sort(&mut one), Ok(()));
    assert_eq!(
        search(&one, insn).map(|e| e.fixup_addr()),
        Some(one[0].fixup_addr())
    );
    assert!(search(&one, insn + 1).is_none());
    assert!(search(&one, insn - 1).is_none());
}
