//! Each validation rule has a fixture that trips it; findings name the file, the entry and
//! the addresses as symbol+offset; errors make `check` exit 1 and `sort` refuse untouched.

mod common;

use common::elfgen::*;
use common::synth::*;
use common::*;
use extable_tool::Layout;
use serde_json::Value;

struct Outcome {
    code: i32,
    json: Value,
    text: String,
}

fn check(p: &Program, extra: &[&str]) -> Outcome {
    let dir = tempdir();
    let path = write(dir.path(), "fixture.elf", &p.build());
    let mut args = vec!["check", s(&path), "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    let json: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let mut targs = vec!["check", s(&path)];
    targs.extend_from_slice(extra);
    let text = stdout(&run(&targs));
    Outcome {
        code: code(&out),
        json,
        text,
    }
}

fn findings(o: &Outcome) -> Vec<Value> {
    o.json["files"][0]["report"]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn finding(o: &Outcome, rule: &str) -> Value {
    findings(o)
        .into_iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} finding in {}", o.json))
}

fn assert_error(p: &Program, rule: &str, index: Option<usize>, symbol: &str) {
    let o = check(p, &[]);
    assert_eq!(o.code, 1, "{rule}: {}", o.json);
    let f = finding(&o, rule);
    assert_eq!(f["severity"], "error");
    match index {
        Some(i) => assert_eq!(f["index"], i),
        None => assert!(f["index"].is_null()),
    }
    let syms: Vec<String> = f["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["symbol"].as_str().unwrap().to_string())
        .collect();
    assert!(
        syms.iter().any(|s| s == symbol),
        "{rule}: {syms:?} lacks {symbol}"
    );
    // The text line names the file, the entry and the rule.
    let line = o
        .text
        .lines()
        .find(|l| l.contains(&format!("[{rule}]")))
        .expect("text line");
    assert!(line.contains("fixture.elf: error:"), "{line}");
    if let Some(i) = index {
        assert!(line.contains(&format!("entry {i}:")), "{line}");
    }
    // Sort refuses and writes nothing.
    let dir = tempdir();
    let path = write(dir.path(), "f", &p.build());
    let before = digest(&path);
    let out = run(&["sort", s(&path)]);
    assert_eq!(
        code(&out),
        1,
        "{rule}: sort should refuse: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("[{rule}]")),
        "{}",
        stderr(&out)
    );
    assert_eq!(digest(&path), before, "{rule}: file changed");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "temporary file left behind"
    );
}

fn ours(specs: Vec<Spec>) -> Program {
    Program::new(Layout::Extable, true, false, specs)
}

fn good(layout: Layout) -> Vec<Spec> {
    sorted_specs(layout, 12)
}

#[test]
fn size_not_a_multiple_of_the_entry() {
    let mut p = ours(good(Layout::Extable));
    p.table_tail = vec![0; 4];
    assert_error(&p, "size", None, "__ex_table");
}

#[test]
fn misaligned_table() {
    let mut p = ours(good(Layout::Extable));
    p.table_addr = TABLE + 2;
    assert_error(&p, "align", None, "__ex_table");
}

#[test]
fn insn_outside_code() {
    let mut specs = good(Layout::Extable);
    specs[5].insn = RODATA + 8;
    assert_error(&ours(specs), "insn-not-code", Some(5), "some_rodata+0x8");
}

#[test]
fn fixup_outside_code() {
    let mut specs = good(Layout::Extable);
    specs[3].fixup = DATA + 6;
    assert_error(&ours(specs), "fixup-not-code", Some(3), "some_object+0x2");
}

#[test]
fn handler_not_a_function() {
    let mut specs = good(Layout::Extable);
    specs[7].third = ThirdSpec::Handler(HANDLER0 + 4);
    assert_error(
        &ours(specs),
        "handler-not-function",
        Some(7),
        "handler0+0x4",
    );
    // Also for Linux 4.6-5.15 x86 handlers.
    let mut specs = good(Layout::LinuxX86Legacy);
    specs[2].third = ThirdSpec::Handler(HANDLER1 + 8);
    let p = Program::new(Layout::LinuxX86Legacy, true, false, specs);
    let o = check(&p, &["--layout", "linux-x86-4.6"]);
    assert_eq!(o.code, 1);
    assert_eq!(finding(&o, "handler-not-function")["index"], 2);
}

#[test]
fn unknown_linux_fixup_type() {
    for (layout, bad) in [
        (Layout::LinuxX86, 0xee),
        (Layout::LinuxArm64, 9),
        (Layout::LinuxRiscv, 0),
        (Layout::LinuxS390, 40),
    ] {
        let mut specs = good(layout);
        specs[4].third = ThirdSpec::Data(bad, 0);
        let p = Program::new(layout, true, layout == Layout::LinuxS390, specs);
        assert_error(&p, "unknown-type", Some(4), "f1+0x4");
    }
}

#[test]
fn conflicting_duplicates() {
    let mut specs = good(Layout::Extable);
    specs[6] = Spec {
        fixup: specs[6].fixup + 4,
        ..specs[5]
    };
    assert_error(&ours(specs), "conflicting-duplicate", Some(6), "f1+0x8");
    // Same insn and fixup, other data word (Linux).
    let mut specs = good(Layout::LinuxX86);
    specs[6] = Spec {
        third: ThirdSpec::Data(3, 0),
        ..specs[5]
    };
    assert_error(
        &Program::new(Layout::LinuxX86, true, false, specs),
        "conflicting-duplicate",
        Some(6),
        "f1+0x8",
    );
}

#[test]
fn identical_duplicates_are_a_note_and_sort_fine() {
    let mut specs = good(Layout::Extable);
    specs[6] = specs[5];
    let o = check(&ours(specs.clone()), &[]);
    assert_eq!(o.code, 0, "{}", o.json);
    let f = finding(&o, "identical-duplicate");
    assert_eq!(f["severity"], "note");
    assert_eq!(f["index"], 6);
    let dir = tempdir();
    let path = write(dir.path(), "f", &ours(shuffled(&specs, 4)).build());
    assert_eq!(code(&run(&["sort", s(&path)])), 0);
    assert!(std::fs::read(&path).unwrap() == ours(specs).marker_value(0).build());
}

#[test]
fn unsorted_table_with_a_cleared_marker() {
    let specs = shuffled(&good(Layout::Extable), 3);
    let o = check(&ours(specs.clone()), &[]);
    assert_eq!(o.code, 0, "unsorted with marker 1 is fine: {}", o.json);
    assert_eq!(finding(&o, "not-sorted-yet")["severity"], "note");
    let p = ours(specs).marker_value(0);
    let o = check(&p, &[]);
    assert_eq!(o.code, 1);
    let f = finding(&o, "unsorted-but-marked");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("extable_main_sort_needed is 0"),
        "{f}"
    );
}

#[test]
fn relative_offset_overflow() {
    // Entry 3's insn is just within i32 reach of its own slot, but not of slot 0.
    let mut specs = good(Layout::Extable)[..4].to_vec();
    let far = TABLE + 36 + 0x7fff_fff0;
    specs[3].insn = far;
    specs[3].fixup = far + 4;
    let mut p = ours(specs);
    p.extra.push(Sec::progbits(
        ".text.far",
        SHF_ALLOC | SHF_EXECINSTR,
        far - 0x10,
        vec![0; 0x40],
    ));
    assert_error(&p, "offset-overflow", Some(3), ".text.far+0x10");
}

#[test]
fn fixup_in_another_function_is_a_warning() {
    let mut specs = good(Layout::Extable);
    specs[1].fixup = TEXT + 9 * FUNC_SIZE + 0x10;
    let o = check(&ours(specs), &[]);
    assert_eq!(o.code, 0, "{}", o.json);
    let f = finding(&o, "fixup-outside-function");
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["index"], 1);
    assert!(
        o.text.contains(
            "fixup 0x10250 <f9+0x10> is in a different function from insn 0x10008 <f0+0x8>"
        ),
        "{}",
        o.text
    );
    // In .text.fixup it is expected (entries 0, 3, 6... use it).
    let o = check(&ours(good(Layout::Extable)), &[]);
    assert!(findings(&o).is_empty(), "{}", o.json);
}

#[test]
fn writable_table_is_a_warning() {
    let mut p = ours(good(Layout::Extable));
    p.table_flags = SHF_ALLOC | SHF_WRITE;
    let o = check(&p, &[]);
    assert_eq!(o.code, 0);
    assert_eq!(finding(&o, "writable-table")["severity"], "warning");
    // With program headers, the segment decides.
    let mut p = ours(good(Layout::Extable));
    p.segments = vec![
        Seg {
            vaddr: TEXT,
            memsz: 0x20000,
            flags: PF_R | PF_X,
        },
        Seg {
            vaddr: TABLE,
            memsz: 0x20000,
            flags: PF_R | PF_W,
        },
    ];
    assert_eq!(
        finding(&check(&p, &[]), "writable-table")["severity"],
        "warning"
    );
    p.segments[1].flags = PF_R;
    assert!(findings(&check(&p, &[])).is_empty());
}

#[test]
fn missing_marker_warns_on_check_and_refuses_sort() {
    let mut p = ours(shuffled(&good(Layout::Extable), 1));
    p.marker = None;
    let o = check(&p, &["--layout", "extable"]);
    assert_eq!(o.code, 0);
    assert_eq!(finding(&o, "no-marker")["severity"], "warning");
    let dir = tempdir();
    let path = write(dir.path(), "f", &p.build());
    let before = digest(&path);
    let out = run(&["sort", s(&path), "--layout", "extable"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no extable_main_sort_needed symbol"),
        "{}",
        stderr(&out)
    );
    assert_eq!(digest(&path), before);
}

fn refused(p: &Program, args: &[&str], needle: &str) {
    let dir = tempdir();
    let path = write(dir.path(), "f.elf", &p.build());
    for cmd in ["check", "sort", "dump"] {
        let before = digest(&path);
        let mut a = vec![cmd, s(&path)];
        a.extend_from_slice(args);
        let out = run(&a);
        assert_eq!(code(&out), 1, "{cmd}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with(&format!("{}: ", path.display())), "{err}");
        assert!(err.contains(needle), "{cmd}: {err} lacks {needle}");
        assert_eq!(digest(&path), before);
    }
}

#[test]
fn ambiguous_and_unsupported_files_are_refused() {
    // Both markers.
    let mut p = ours(good(Layout::Extable));
    p.extra.push(Sec::progbits(
        ".data.linux",
        SHF_ALLOC | SHF_WRITE,
        0x60000,
        vec![1, 0, 0, 0],
    ));
    let mut e = p.clone();
    e.marker = Some(("main_extable_sort_needed".into(), 1));
    let elf = {
        let mut elf = p.elf();
        let idx = elf.sections.len() - 1;
        elf.add_symbol(
            "main_extable_sort_needed",
            Some(idx),
            0x60000,
            4,
            STT_OBJECT,
        );
        elf.build()
    };
    let dir = tempdir();
    let path = write(dir.path(), "both", &elf);
    let out = run(&["check", s(&path)]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("both extable_main_sort_needed and main_extable_sort_needed"));
    // ... unless forced.
    assert_eq!(code(&run(&["check", s(&path), "--layout", "extable"])), 0);
    // Neither marker.
    let mut p = ours(good(Layout::Extable));
    p.marker = None;
    refused(
        &p,
        &[],
        "neither extable_main_sort_needed nor main_extable_sort_needed",
    );
    // Linux marker on a machine Linux never sorted for.
    let mut p = Program::new(Layout::LinuxX86, true, false, good(Layout::LinuxX86));
    p.machine = 0x1234;
    refused(&p, &[], "e_machine 4660");
    // x86 where most third words are handlers but some are not: a 4.6-5.15 table with broken
    // handlers, or a coincidence too large to guess about. (At most half on function starts
    // reads as 5.16+ data words, some of which land on functions by chance: see
    // `arch::x86::classify`.)
    let mut specs = good(Layout::LinuxX86Legacy);
    for s in specs.iter_mut().step_by(4) {
        s.third = ThirdSpec::Handler(TEXT + 0x3001); // not a function start
    }
    refused(
        &Program::new(Layout::LinuxX86Legacy, true, false, specs),
        &[],
        "ambiguous layout",
    );
    // ET_REL.
    let mut p = ours(good(Layout::Extable));
    p.e_type = ET_REL;
    refused(&p, &[], "relocatable object (ET_REL)");
    // No table.
    let p = ours(vec![]);
    let mut elf = p.elf();
    elf.sections.retain(|s| s.name != "__ex_table");
    let path = write(dir.path(), "notable", &elf.build());
    let out = run(&["sort", s(&path)]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("no __ex_table section"));
}

#[test]
fn findings_per_rule_are_capped_but_counted() {
    let specs: Vec<Spec> = good(Layout::Extable)
        .iter()
        .cycle()
        .take(300)
        .enumerate()
        .map(|(i, s)| Spec {
            insn: RODATA + (i as u64 % 60),
            ..*s
        })
        .collect();
    let mut p = ours(specs);
    p.extra.clear();
    let o = check(&p, &[]);
    assert_eq!(o.code, 1);
    assert!(
        o.json["files"][0]["report"]["errors"].as_u64().unwrap() >= 300,
        "{}",
        o.json["files"][0]["report"]["errors"]
    );
    let listed = findings(&o)
        .iter()
        .filter(|f| f["rule"] == "insn-not-code")
        .count();
    assert_eq!(listed, 101, "100 listed plus one 'more' line");
}
