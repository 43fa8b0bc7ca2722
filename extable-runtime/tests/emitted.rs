//! Read the `__ex_table` the macros emit back from compiled objects.
//!
//! `tests/fixtures/emitted.rs` is compiled with `rustc --emit=obj` for x86_64, ARMv7 (A32,
//! and T32 through `#[instruction_set(arm::t32)]` and the thumbv7neon target) and AArch64,
//! against the real proc-macro. For every entry the test resolves the relocations of the
//! three fields and checks: the insn field points at the marked instruction (recognised by
//! its encoding), the fixup field at the fixup (the `[ex => 3f]` label's instruction, the
//! out-of-line stub that branches back right after the marked instruction, or a Rust
//! `label` block inside the same function), the handler field at the handler named in the
//! block; and the section's flags are exactly `entry::ASM_SECTION_FLAGS`.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::path::{Path, PathBuf};
use std::process::Command;

use extable_runtime::entry::{ASM_SECTION_FLAGS, ENTRY_SIZE, SECTION};
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionFlags, SectionIndex};

/// A place in a relocatable object: section and offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Loc {
    section: SectionIndex,
    offset: u64,
}

/// How the instruction set encodes what the fixtures contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    X86_64,
    A32,
    T32,
    A64,
}

impl Isa {
    /// `mov rax, [rdi+0x5a5]` / `ldr r0, [r1, #0x5a4]` / `ldr x0, [x1, #0x5a8]`.
    fn load(self) -> &'static [u8] {
        match self {
            Isa::X86_64 => &[0x48, 0x8b, 0x87, 0xa5, 0x05, 0, 0],
            Isa::A32 => &[0xa4, 0x05, 0x91, 0xe5],
            Isa::T32 => &[0xd1, 0xf8, 0xa4, 0x05],
            Isa::A64 => &[0x20, 0xd4, 0x42, 0xf9],
        }
    }
    /// The matching store.
    fn store(self) -> &'static [u8] {
        match self {
            Isa::X86_64 => &[0x48, 0x89, 0x87, 0xa5, 0x05, 0, 0],
            Isa::A32 => &[0xa4, 0x05, 0x81, 0xe5],
            Isa::T32 => &[0xc1, 0xf8, 0xa4, 0x05],
            Isa::A64 => &[0x20, 0xd4, 0x02, 0xf9],
        }
    }
    /// The instruction at the explicit target: `mov eax, 0x1234567` / `movw r0, #0x1234` /
    /// `movz x0, #0x1234`.
    fn target_insn(self) -> &'static [u8] {
        match self {
            Isa::X86_64 => &[0xb8, 0x67, 0x45, 0x23, 0x01],
            Isa::A32 => &[0x34, 0x02, 0x01, 0xe3],
            Isa::T32 => &[0x41, 0xf2, 0x34, 0x20],
            Isa::A64 => &[0x80, 0x46, 0x82, 0xd2],
        }
    }
    /// The stub's store of the record address: `mov [r12], r12` / `str r4, [r4]` /
    /// `str x20, [x20]`.
    fn stub(self) -> &'static [u8] {
        match self {
            Isa::X86_64 => &[0x4d, 0x89, 0x24, 0x24],
            Isa::A32 => &[0x00, 0x40, 0x84, 0xe5],
            Isa::T32 => &[0x24, 0x60],
            Isa::A64 => &[0x94, 0x02, 0x00, 0xf9],
        }
    }
}

fn target_dir_deps() -> PathBuf {
    std::env::current_exe()
        .expect("current_exe")
        .parent()
        .expect("deps dir")
        .to_path_buf()
}

/// The extable-macros proc-macro library cargo built for this test.
fn proc_macro_lib() -> PathBuf {
    let deps = target_dir_deps();
    let mut libs: Vec<_> = std::fs::read_dir(&deps)
        .expect("read deps dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("libextable_macros-") && name.ends_with(".so")
        })
        .collect();
    libs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    libs.pop()
        .unwrap_or_else(|| panic!("no libextable_macros-*.so in {}", deps.display()))
}

/// Compile the fixture for `target`; returns the object file.
fn compile(target: &str) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/emitted.rs");
    let out =
        std::env::temp_dir().join(format!("extable-emitted-{}-{target}.o", std::process::id()));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = Command::new(rustc)
        .args(["--edition", "2021", "--crate-type", "lib", "--emit=obj"])
        .args([
            "-C",
            "opt-level=1",
            "-C",
            "panic=abort",
            "--cap-lints",
            "allow",
        ])
        .args(["--target", target])
        .arg("--extern")
        .arg(format!("extable_macros={}", proc_macro_lib().display()))
        .arg(&fixture)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run rustc");
    assert!(status.success(), "rustc --emit=obj for {target} failed");
    out
}

/// The section flags `ASM_SECTION_FLAGS` spells, as ELF `sh_flags`.
fn expected_sh_flags() -> u64 {
    ASM_SECTION_FLAGS
        .chars()
        .map(|c| match c {
            'a' => object::elf::SHF_ALLOC.0,
            'w' => object::elf::SHF_WRITE.0,
            'x' => object::elf::SHF_EXECINSTR.0,
            'R' => object::elf::SHF_GNU_RETAIN.0,
            other => panic!("unexpected flag {other:?} in ASM_SECTION_FLAGS"),
        })
        .fold(0, |a, b| a | b)
}

struct Obj<'a> {
    file: object::File<'a>,
    /// Bit 0 of a code address is the Thumb bit (ARM), not part of the address.
    thumb_bit: u64,
}

impl<'a> Obj<'a> {
    fn section_data(&self, index: SectionIndex) -> &'a [u8] {
        self.file
            .section_by_index(index)
            .and_then(|s| s.data())
            .expect("section data")
    }

    fn bytes_at(&self, loc: Loc, len: usize) -> &'a [u8] {
        let data = self.section_data(loc.section);
        let start = loc.offset as usize;
        &data[start..start + len]
    }

    /// The place a relocation at `offset` of section `sec` points to, with its addend
    /// (implicit ones read as a 32-bit field).
    fn reloc_target(&self, sec: SectionIndex, offset: u64) -> Option<(Loc, i64, bool)> {
        let section = self.file.section_by_index(sec).ok()?;
        let (_, rel) = section.relocations().find(|(o, _)| *o == offset)?;
        let base = match rel.target() {
            RelocationTarget::Symbol(i) => {
                let sym = self.file.symbol_by_index(i).ok()?;
                Loc {
                    section: sym.section_index()?,
                    offset: sym.address(),
                }
            }
            RelocationTarget::Section(i) => Loc {
                section: i,
                offset: 0,
            },
            _ => return None,
        };
        Some((base, rel.addend(), rel.has_implicit_addend()))
    }

    /// Resolve a `.long X - .` field: the place `X`.
    fn field(&self, sec: SectionIndex, offset: u64) -> Loc {
        let (base, addend, implicit) = self
            .reloc_target(sec, offset)
            .unwrap_or_else(|| panic!("no relocation for the field at {offset:#x}"));
        let addend = if implicit {
            let d = self.section_data(sec);
            let o = offset as usize;
            i64::from(i32::from_le_bytes(d[o..o + 4].try_into().unwrap()))
        } else {
            addend
        };
        Loc {
            section: base.section,
            offset: base.offset.wrapping_add(addend as u64) & !self.thumb_bit,
        }
    }

    /// The function symbol `name`: its section and byte range (Thumb bit cleared).
    fn function(&self, name: &str) -> (SectionIndex, std::ops::Range<u64>) {
        let sym = self
            .file
            .symbols()
            .find(|s| s.name() == Ok(name))
            .unwrap_or_else(|| panic!("no symbol {name}"));
        let start = sym.address() & !self.thumb_bit;
        (sym.section_index().unwrap(), start..start + sym.size())
    }

    /// The place of the first function symbol whose name contains `part`.
    fn symbol_containing(&self, part: &str) -> Loc {
        let sym = self
            .file
            .symbols()
            .find(|s| s.name().is_ok_and(|n| n.contains(part)) && s.section_index().is_some())
            .unwrap_or_else(|| panic!("no symbol containing {part}"));
        Loc {
            section: sym.section_index().unwrap(),
            offset: sym.address() & !self.thumb_bit,
        }
    }

    /// Where the branch that follows a stub goes.
    fn stub_branch_target(&self, isa: Isa, stub: Loc) -> Loc {
        let stub_len = isa.stub().len() as u64;
        let (field, bias) = match isa {
            Isa::X86_64 => (stub.offset + stub_len + 1, 4i64),
            Isa::A64 => (stub.offset + stub_len, 0),
            Isa::A32 => (stub.offset + stub_len, 8),
            Isa::T32 => (stub.offset + stub_len, 4),
        };
        let (base, addend, implicit) = self
            .reloc_target(stub.section, field)
            .expect("the stub branches back through a relocation");
        let addend = if implicit {
            let d = self.section_data(stub.section);
            let o = field as usize;
            match isa {
                Isa::A32 => {
                    let w = u32::from_le_bytes(d[o..o + 4].try_into().unwrap());
                    i64::from(((w << 8) as i32) >> 6)
                }
                Isa::T32 => thumb_branch_offset(
                    u16::from_le_bytes([d[o], d[o + 1]]),
                    u16::from_le_bytes([d[o + 2], d[o + 3]]),
                ),
                _ => unreachable!("RELA on x86_64 and AArch64"),
            }
        } else {
            addend
        };
        Loc {
            section: base.section,
            offset: (base.offset as i64 + addend + bias) as u64 & !self.thumb_bit,
        }
    }
}

/// The offset a Thumb-2 `b.w` (T4) encodes.
fn thumb_branch_offset(hw1: u16, hw2: u16) -> i64 {
    let s = u32::from(hw1 >> 10) & 1;
    let imm10 = u32::from(hw1) & 0x3ff;
    let j1 = u32::from(hw2 >> 13) & 1;
    let j2 = u32::from(hw2 >> 11) & 1;
    let imm11 = u32::from(hw2) & 0x7ff;
    let i1 = !(j1 ^ s) & 1;
    let i2 = !(j2 ^ s) & 1;
    let imm = (s << 24) | (i1 << 23) | (i2 << 22) | (imm10 << 12) | (imm11 << 1);
    i64::from(((imm << 7) as i32) >> 7)
}

/// One entry, resolved.
#[derive(Debug)]
struct Entry {
    insn: Loc,
    fixup: Loc,
    handler: Loc,
}

fn entries(obj: &Obj) -> Vec<Entry> {
    let sec = obj
        .file
        .section_by_name(SECTION)
        .expect("the object has __ex_table");
    let SectionFlags::Elf { sh_flags, .. } = sec.flags() else {
        panic!("not ELF")
    };
    assert_eq!(
        sh_flags.0,
        expected_sh_flags(),
        "__ex_table flags must be exactly {ASM_SECTION_FLAGS:?}"
    );
    assert_eq!(sec.size() % ENTRY_SIZE as u64, 0);
    (0..sec.size() / ENTRY_SIZE as u64)
        .map(|i| {
            let at = i * ENTRY_SIZE as u64;
            Entry {
                insn: obj.field(sec.index(), at),
                fixup: obj.field(sec.index(), at + 4),
                handler: obj.field(sec.index(), at + 8),
            }
        })
        .collect()
}

/// The one entry whose instruction lies in function `name`.
fn entry_of<'e>(obj: &Obj, all: &'e [Entry], name: &str) -> &'e Entry {
    let (sec, range) = obj.function(name);
    let mine: Vec<&Entry> = all
        .iter()
        .filter(|e| e.insn.section == sec && range.contains(&e.insn.offset))
        .collect();
    assert_eq!(mine.len(), 1, "{name}: expected one entry, found {mine:?}");
    mine[0]
}

/// Check the fixtures `prefix{record, explicit, label}` of one instruction set.
fn check_fixtures(obj: &Obj, all: &[Entry], isa: Isa, prefix: &str, att: bool) {
    let default_h = obj.symbol_containing("8handlers7default");
    let uaccess_h = obj.symbol_containing("8handlers7uaccess");
    let record_h = obj.symbol_containing("9__private6record");

    let mut records = vec![format!("{prefix}record")];
    if att {
        records.push(format!("{prefix}record_att"));
    }
    for name in &records {
        let e = entry_of(obj, all, name);
        assert_eq!(
            obj.bytes_at(e.insn, isa.load().len()),
            isa.load(),
            "{name}: insn"
        );
        assert_eq!(
            obj.bytes_at(e.fixup, isa.stub().len()),
            isa.stub(),
            "{name}: fixup is the stub"
        );
        let back = obj.stub_branch_target(isa, e.fixup);
        let after = Loc {
            section: e.insn.section,
            offset: e.insn.offset + isa.load().len() as u64,
        };
        assert_eq!(
            back, after,
            "{name}: the stub resumes right after the block"
        );
        assert_eq!(e.handler, record_h, "{name}: handler is record::<REG>");
    }

    let name = format!("{prefix}explicit");
    let e = entry_of(obj, all, &name);
    assert_eq!(
        obj.bytes_at(e.insn, isa.load().len()),
        isa.load(),
        "{name}: insn"
    );
    assert_eq!(
        obj.bytes_at(e.fixup, isa.target_insn().len()),
        isa.target_insn(),
        "{name}: fixup is label 3"
    );
    assert_eq!(e.handler, uaccess_h, "{name}: handler = uaccess");

    let name = format!("{prefix}label");
    let e = entry_of(obj, all, &name);
    assert_eq!(
        obj.bytes_at(e.insn, isa.store().len()),
        isa.store(),
        "{name}: insn"
    );
    let (sec, range) = obj.function(&name);
    assert!(
        e.fixup.section == sec && range.contains(&e.fixup.offset) && e.fixup != e.insn,
        "{name}: fixup {:?} must be the label block inside the function {range:?}",
        e.fixup
    );
    assert_eq!(e.handler, default_h, "{name}: handler = default");
}

fn check_target(target: &str, sets: &[(Isa, &str, bool)], expected_entries: usize) {
    let path = compile(target);
    let data = std::fs::read(&path).expect("read object");
    let _ = std::fs::remove_file(&path);
    let obj = Obj {
        file: object::File::parse(&*data).expect("parse object"),
        thumb_bit: u64::from(
            sets.iter()
                .any(|(isa, ..)| matches!(isa, Isa::A32 | Isa::T32)),
        ),
    };
    let all = entries(&obj);
    assert_eq!(all.len(), expected_entries, "{target}: entries {all:?}");
    for (isa, prefix, att) in sets {
        check_fixtures(&obj, &all, *isa, prefix, *att);
    }
}

#[test]
fn x86_64_entries_point_at_the_marked_instruction_and_the_fixup() {
    check_target("x86_64-unknown-none", &[(Isa::X86_64, "fx_", true)], 4);
}

#[test]
fn armv7_a32_and_t32_entries_point_at_the_marked_instruction_and_the_fixup() {
    check_target(
        "armv7a-none-eabi",
        &[(Isa::A32, "fx_", false), (Isa::T32, "fx_t32_", false)],
        6,
    );
}

#[test]
fn thumb2_target_entries_point_at_the_marked_instruction_and_the_fixup() {
    check_target(
        "thumbv7neon-unknown-linux-gnueabihf",
        &[(Isa::T32, "fx_", false)],
        3,
    );
}

#[test]
fn aarch64_entries_point_at_the_marked_instruction_and_the_fixup() {
    check_target("aarch64-unknown-none", &[(Isa::A64, "fx_", false)], 3);
}
