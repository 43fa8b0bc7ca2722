//! The instruction rules read the code they decode ahead of decoding it: one read of the
//! file per run of nearby ranges, not one per function or entry, and every range is then
//! served from the right bytes.

use std::cell::Cell;

use super::common::synth::*;
use extable_tool::analysis::Analysis;
use extable_tool::elf::Image;
use extable_tool::insn;
use extable_tool::records::Pages;
use extable_tool::Layout;

/// [`Pages`] that counts the reads of the file.
#[derive(Default)]
struct CountedReads(Cell<usize>);

impl Pages for CountedReads {
    fn release(&self, _: &[u8]) {}

    fn copy(&self, bytes: &[u8]) -> Vec<u8> {
        self.0.set(self.0.get() + 1);
        bytes.to_vec()
    }
}

/// Entries at `(function, offset)`; the code is zeros (`add [rax], al`, two bytes per
/// instruction) except function `nops`, all one-byte `nop`s.
fn file(entries: &[(u64, u64)], nops: u64) -> Vec<u8> {
    let mut specs = sorted_specs(Layout::LinuxX86, entries.len());
    for (spec, &(f, off)) in specs.iter_mut().zip(entries) {
        spec.insn = TEXT + f * FUNC_SIZE + off;
        spec.fixup = TEXT + f * FUNC_SIZE + 0x30;
    }
    let mut e = Program::new(Layout::LinuxX86, true, false, specs).elf();
    let text = e.sections.iter_mut().find(|s| s.name == ".text").unwrap();
    let at = (nops * FUNC_SIZE) as usize;
    text.data[at..at + FUNC_SIZE as usize].fill(0x90);
    e.build()
}

/// The reads the rules make, and the entries they find inside an instruction.
fn reads_and_mid_instruction(bytes: &[u8]) -> (usize, Vec<usize>) {
    reads_and_mid_instruction_reading_ahead(bytes, usize::MAX)
}

/// [`reads_and_mid_instruction`] with at most `max` bytes read ahead.
fn reads_and_mid_instruction_reading_ahead(bytes: &[u8], max: usize) -> (usize, Vec<usize>) {
    let image = Image::parse(bytes).unwrap();
    let a = Analysis::new(&image, Some(Layout::LinuxX86)).unwrap();
    let pages = CountedReads::default();
    let found = if max == usize::MAX {
        insn::check(&a, &pages)
    } else {
        insn::check_reading_ahead(&a, &pages, max)
    };
    let mid = found
        .iter()
        .filter(|f| f.rule == "insn-mid-instruction")
        .map(|f| f.index)
        .collect();
    (pages.0.get(), mid)
}

#[test]
fn nearby_functions_are_read_at_once_and_distant_ones_apart() {
    // Twelve functions in 0x300 bytes: one read.
    let near: Vec<_> = (0..12).map(|f| (f, 4)).collect();
    assert_eq!(reads_and_mid_instruction(&file(&near, 200)), (1, vec![]));
    // Two groups 12 KiB apart: a read each.
    let mut apart = near.clone();
    apart.extend((200..204).map(|f| (f, 8)));
    assert_eq!(reads_and_mid_instruction(&file(&apart, 200)), (2, vec![]));
}

#[test]
fn each_function_is_decoded_from_its_own_bytes() {
    // An odd offset is an instruction start in the function of nops, and inside an
    // instruction in the zeros: the rules tell them apart only if each range is served
    // from its own place in what was read.
    let entries = [(1, 4), (3, 5), (5, 4), (200, 5), (201, 4), (202, 7)];
    let (reads, mid) = reads_and_mid_instruction(&file(&entries, 200));
    assert_eq!(reads, 2);
    assert_eq!(mid, vec![1, 5]);
}

#[test]
fn what_does_not_fit_the_read_ahead_is_read_when_decoded() {
    // Two runs: the first (functions 1-5, 0x140 bytes) fits 0x180 bytes, the second does
    // not: its three functions are read one by one, and judged alike.
    let entries = [(1, 4), (3, 5), (5, 4), (200, 5), (201, 4), (202, 7)];
    let (reads, mid) = reads_and_mid_instruction_reading_ahead(&file(&entries, 200), 0x180);
    assert_eq!(reads, 1 + 3);
    assert_eq!(mid, vec![1, 5]);
}
