//! Missing, read-only, truncated and malformed files: exit 2, one line naming the file,
//! the file untouched (hash compared). And a proptest mutation test over the reader.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::synth::*;
use common::*;
use extable_tool::Layout;
use proptest::prelude::*;

fn valid() -> Vec<u8> {
    let specs = sorted_specs(Layout::Extable, 16);
    Program::new(Layout::Extable, true, false, shuffled(&specs, 5)).build()
}

fn assert_exit2(path: &std::path::Path, cmds: &[&str], needle: &str) {
    for cmd in cmds {
        let before = digest(path);
        let out = run(&[cmd, s(path)]);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{cmd} {}: {err}", path.display());
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with(&format!("{}: ", path.display())), "{err}");
        assert!(err.contains(needle), "{cmd}: {err:?} lacks {needle:?}");
        assert_eq!(digest(path), before, "{cmd} changed {}", path.display());
    }
}

#[test]
fn missing_file() {
    let dir = tempdir();
    let p = dir.path().join("nope.elf");
    assert_exit2(&p, &["sort", "check", "dump"], "cannot open");
    assert!(!p.exists());
}

#[test]
fn directory_and_empty_file() {
    let dir = tempdir();
    assert_exit2(dir.path(), &["sort", "check", "dump"], "not a regular file");
    let p = write(dir.path(), "empty", b"");
    assert_exit2(&p, &["sort", "check", "dump"], "not an ELF file");
}

#[test]
fn read_only_file_is_not_sorted() {
    let dir = tempdir();
    let p = write(dir.path(), "ro.elf", &valid());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    assert_exit2(&p, &["sort"], "read-only");
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o444
    );
    // Reading it is fine.
    assert_eq!(code(&run(&["check", s(&p)])), 0);
    // A read-only -o destination is refused too.
    let src = write(dir.path(), "src.elf", &valid());
    let before = digest(&p);
    let out = run(&["sort", s(&src), "-o", s(&p)]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(digest(&p), before);
}

#[test]
fn truncated_files() {
    let data = valid();
    let dir = tempdir();
    for cut in [
        3,
        15,
        40,
        63,
        64,
        200,
        data.len() / 2,
        data.len() - 200,
        data.len() - 1,
    ] {
        let p = write(dir.path(), &format!("cut{cut}"), &data[..cut]);
        let out = run(&["sort", s(&p)]);
        assert_eq!(code(&out), 2, "cut at {cut}: {}", stderr(&out));
        assert_exit2(&p, &["sort", "check", "dump"], "");
    }
}

#[test]
fn malformed_headers() {
    let good = valid();
    let dir = tempdir();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![];
    let mut garbage = good.clone();
    garbage[..4].copy_from_slice(b"\x7fELG");
    cases.push(("magic", garbage, "not an ELF file"));
    let mut class = good.clone();
    class[4] = 9;
    cases.push(("class", class, "unrecognized ELF class"));
    let mut shoff = good.clone();
    shoff[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("shoff", shoff, "section header"));
    let mut shentsize = good.clone();
    shentsize[0x3a] = 12;
    cases.push(("shentsize", shentsize, "section header entry size"));
    let mut ehsize = good.clone();
    ehsize[0x34] = 60;
    cases.push(("ehsize", ehsize, "header size"));
    // __ex_table pointing past the end of the file.
    let mut table = good.clone();
    let shoff_v = u64::from_le_bytes(good[0x28..0x30].try_into().unwrap()) as usize;
    let table_hdr = shoff_v + 3 * 64;
    table[table_hdr + 24..table_hdr + 32].copy_from_slice(&(good.len() as u64 - 8).to_le_bytes());
    cases.push(("table", table, "lies outside the file"));
    for (name, bytes, needle) in cases {
        let p = write(dir.path(), name, &bytes);
        assert_exit2(&p, &["sort", "check", "dump"], needle);
    }
}

fn exercise(data: &[u8]) {
    // Every read-only path of the library: parse, detect, check, dump (with DWARF), plan.
    for layout in [
        None,
        Some(Layout::Extable),
        Some(Layout::LinuxX86),
        Some(Layout::Absolute),
    ] {
        let _ = extable_tool::inspect_bytes(
            data,
            &extable_tool::Options {
                layout,
                ..Default::default()
            },
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic_the_reader(
        edits in prop::collection::vec((0usize..1 << 20, any::<u8>()), 1..8),
        header_edits in prop::collection::vec((0usize..64, any::<u8>()), 0..3),
        cut in prop::option::of(0usize..1 << 20),
        seed in 0u64..4,
    ) {
        let layout = [Layout::Extable, Layout::LinuxX86, Layout::Absolute, Layout::LinuxPowerpc][seed as usize];
        let (is64, big) = [(true, false), (false, true), (false, false), (true, true)][seed as usize];
        let mut data = Program::new(layout, is64, big, shuffled(&sorted_specs(layout, 10), seed)).build();
        let len = data.len();
        // Bias edits towards the headers and tables at the end of the file.
        for (at, v) in edits {
            let at = if at % 2 == 0 { len - 1 - (at / 2) % 2048.min(len) } else { at % len };
            data[at] = v;
        }
        for (at, v) in header_edits {
            data[at] = v;
        }
        if let Some(c) = cut {
            data.truncate(c % (len + 1));
        }
        exercise(&data);
    }
}

#[test]
fn every_single_byte_of_a_header_region_can_be_anything() {
    let data = valid();
    let shoff = u64::from_le_bytes(data[0x28..0x30].try_into().unwrap()) as usize;
    for at in (0..64).chain(shoff..data.len()).step_by(3) {
        for v in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut d = data.clone();
            d[at] = v;
            exercise(&d);
        }
    }
}
