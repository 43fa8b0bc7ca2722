//! A re-implementation of the `__ex_table` part of Linux 6.1's `scripts/sorttable.c` and
//! `sorttable.h` (plus 5.15's `x86_sort_relative_table` and `s390_sort_relative_table` for
//! the 4.6-5.15 x86 and 5.5-5.15 s390 layouts), used as
//! the byte-identity oracle. It works on raw bytes with its own header parsing, following
//! sorttable's steps: find `__ex_table`, `.symtab`, `.strtab` and `SHT_SYMTAB_SHNDX` by a walk
//! over the section headers (tracking the relocation section whose `sh_info` equals the
//! table index known so far), sort the image, zero those relocations, and write a 32-bit 0 at
//! the `STT_OBJECT` symbol `main_extable_sort_needed`.
//!
//! qsort is replaced by a stable sort with the same comparator: for tables without
//! conflicting duplicates (which the tool refuses) every qsort gives the same bytes.

#![allow(dead_code)]

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKind {
    /// `sort_relative_table_with_data` (x86 >= 5.16, arm64, s390, riscv).
    RelativeWithData,
    /// `sort_relative_table` (powerpc, parisc).
    Relative,
    /// 5.15's `s390_sort_relative_table` (two relative words and a relative 64-bit handler,
    /// 0 kept).
    S390Handler,
    /// 5.15's `x86_sort_relative_table` (three relative words).
    X86Legacy,
    /// Plain `qsort` with `compare_extable` (absolute).
    Absolute,
}

/// Linux 6.1 `do_file`'s choice by `e_machine` (riscv added as in 6.1's list).
pub fn kind_for_machine(machine: u16) -> Option<SortKind> {
    match machine {
        3 | 183 | 22 | 62 | 243 => Some(SortKind::RelativeWithData),
        15 | 20 | 21 => Some(SortKind::Relative),
        93 | 195 | 40 | 258 | 189 | 8 | 94 => Some(SortKind::Absolute),
        _ => None,
    }
}

struct R {
    big: bool,
}

impl R {
    fn r(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }
    fn r2(&self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.big {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
    fn r8(&self, b: &[u8]) -> u64 {
        let mut a = [0; 8];
        a.copy_from_slice(&b[..8]);
        if self.big {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    }
    fn w8(&self, v: u64, b: &mut [u8]) {
        let a = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        b[..8].copy_from_slice(&a);
    }
    fn w(&self, v: u32, b: &mut [u8]) {
        let a = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        b[..4].copy_from_slice(&a);
    }
}

fn cstr(data: &[u8], at: usize) -> &[u8] {
    let end = data[at..].iter().position(|&c| c == 0).unwrap() + at;
    &data[at..end]
}

/// Sort `file` in place as sorttable does.
pub fn sorttable(file: &mut [u8], kind: SortKind) -> Result<(), String> {
    let is64 = file[4] == 2;
    let rd = R { big: file[5] == 2 };
    let e_type = rd.r2(&file[16..]);
    if e_type != 2 && e_type != 3 {
        return Err("unrecognized ET_EXEC/ET_DYN file".into());
    }
    let word = |b: &[u8]| if is64 { rd.r8(b) } else { u64::from(rd.r(b)) };
    let (shoff, shnum_at, shstrndx_at, shsize) = if is64 {
        (word(&file[0x28..]), 0x3c, 0x3e, 64usize)
    } else {
        (word(&file[0x20..]), 0x30, 0x32, 40usize)
    };
    let shdr = |i: usize| shoff as usize + i * shsize;
    // Field readers for a section header.
    let sh_name = |f: &[u8], i: usize| rd.r(&f[shdr(i)..]) as usize;
    let sh_type = |f: &[u8], i: usize| rd.r(&f[shdr(i) + 4..]);
    let (o_off, o_size, o_link, o_info) = if is64 {
        (24, 32, 40, 44)
    } else {
        (16, 20, 24, 28)
    };
    let sh_offset = |f: &[u8], i: usize| word(&f[shdr(i) + o_off..]) as usize;
    let sh_size = |f: &[u8], i: usize| word(&f[shdr(i) + o_size..]) as usize;
    let sh_link = |f: &[u8], i: usize| rd.r(&f[shdr(i) + o_link..]) as usize;
    let sh_info = |f: &[u8], i: usize| rd.r(&f[shdr(i) + o_info..]) as usize;
    let sh_addr = |f: &[u8], i: usize| word(&f[shdr(i) + if is64 { 16 } else { 12 }..]);

    let mut shstrndx = rd.r2(&file[shstrndx_at..]) as usize;
    if shstrndx == 0xffff {
        shstrndx = sh_link(file, 0);
    }
    let secstrings = sh_offset(file, shstrndx);
    let mut shnum = rd.r2(&file[shnum_at..]) as usize;
    if shnum == 0 {
        shnum = sh_size(file, 0);
    }
    let (mut extab, mut symtab, mut strtab, mut shndx) = (None, None, None, None);
    let mut extab_index = 0;
    let mut relocs = None;
    for i in 0..shnum {
        let name = cstr(file, secstrings + sh_name(file, i));
        if name == b"__ex_table" {
            extab = Some(i);
            extab_index = i;
        }
        if name == b".symtab" {
            symtab = Some(i);
        }
        if name == b".strtab" {
            strtab = Some(i);
        }
        let t = sh_type(file, i);
        if (t == 9 || t == 4) && sh_info(file, i) == extab_index {
            relocs = Some((sh_offset(file, i), sh_size(file, i)));
        }
        if t == 18 {
            shndx = Some(sh_offset(file, i));
        }
    }
    let extab = extab.ok_or("no __ex_table in file")?;
    let symtab = symtab.ok_or("no .symtab in file")?;
    let strtab = strtab.ok_or("no .strtab in file")?;
    let (eoff, esize) = (sh_offset(file, extab), sh_size(file, extab));
    sort_image(&mut file[eoff..eoff + esize], kind, &rd, is64);
    if let Some((off, size)) = relocs {
        file[off..off + size].fill(0);
    }
    let symsize = if is64 { 24 } else { 16 };
    let (symoff, symbytes) = (sh_offset(file, symtab), sh_size(file, symtab));
    let stroff = sh_offset(file, strtab);
    let mut found = None;
    for k in 0..symbytes / symsize {
        let s = symoff + k * symsize;
        let (info, name, shndx_v, value) = if is64 {
            (
                file[s + 4],
                rd.r(&file[s..]),
                rd.r2(&file[s + 6..]),
                rd.r8(&file[s + 8..]),
            )
        } else {
            (
                file[s + 12],
                rd.r(&file[s..]),
                rd.r2(&file[s + 14..]),
                u64::from(rd.r(&file[s + 4..])),
            )
        };
        if info & 0xf != 1 {
            continue;
        }
        if cstr(file, stroff + name as usize) == b"main_extable_sort_needed" {
            found = Some((k, shndx_v, value));
            break;
        }
    }
    let (k, st_shndx, value) = found.ok_or("no main_extable_sort_needed symbol in file")?;
    // get_secindex
    let sec = if st_shndx != 0xffff && st_shndx >= 0xff00 {
        return Err("special section index".into());
    } else if st_shndx != 0xffff {
        st_shndx as usize
    } else {
        rd.r(&file[shndx.ok_or("no SYMTAB_SHNDX")? + 4 * k..]) as usize
    };
    let loc = sh_offset(file, sec) + (value - sh_addr(file, sec)) as usize;
    rd.w(0, &mut file[loc..]);
    Ok(())
}

fn sort_image(image: &mut [u8], kind: SortKind, rd: &R, is64: bool) {
    let size = image.len();
    let cmp_rel = |a: &[u8], b: &[u8]| (rd.r(a) as i32).cmp(&(rd.r(b) as i32));
    match kind {
        SortKind::Relative => {
            let mut i = 0;
            while i < size {
                let v = rd.r(&image[i..]).wrapping_add(i as u32);
                rd.w(v, &mut image[i..]);
                i += 4;
            }
            qsort(image, 8, cmp_rel);
            let mut i = 0;
            while i < size {
                let v = rd.r(&image[i..]).wrapping_sub(i as u32);
                rd.w(v, &mut image[i..]);
                i += 4;
            }
        }
        SortKind::RelativeWithData | SortKind::X86Legacy => {
            let words = if kind == SortKind::X86Legacy { 3 } else { 2 };
            let mut i = 0;
            while i < size {
                for k in 0..words {
                    let at = i + 4 * k;
                    let v = rd.r(&image[at..]).wrapping_add(at as u32);
                    rd.w(v, &mut image[at..]);
                }
                i += 12;
            }
            qsort(image, 12, cmp_rel);
            let mut i = 0;
            while i < size {
                for k in 0..words {
                    let at = i + 4 * k;
                    let v = rd.r(&image[at..]).wrapping_sub(at as u32);
                    rd.w(v, &mut image[at..]);
                }
                i += 12;
            }
        }
        SortKind::S390Handler => {
            // Normalise: each word plus its offset; a handler only when it is not 0.
            let shift = |image: &mut [u8], sign: i64| {
                let mut i = 0;
                while i < size {
                    for at in [i, i + 4] {
                        let v = rd.r(&image[at..]).wrapping_add((sign * at as i64) as u32);
                        rd.w(v, &mut image[at..]);
                    }
                    let handler = rd.r8(&image[i + 8..]);
                    if handler != 0 {
                        let v = handler.wrapping_add((sign * (i + 8) as i64) as u64);
                        rd.w8(v, &mut image[i + 8..]);
                    }
                    i += 16;
                }
            };
            shift(image, 1);
            qsort(image, 16, cmp_rel);
            shift(image, -1);
        }
        SortKind::Absolute => {
            let ent = if is64 { 16 } else { 8 };
            if is64 {
                qsort(image, ent, |a, b| rd.r8(a).cmp(&rd.r8(b)));
            } else {
                qsort(image, ent, |a, b| rd.r(a).cmp(&rd.r(b)));
            }
        }
    }
}

/// `qsort(base, len / size, size, cmp)` with a stable sort.
fn qsort(base: &mut [u8], size: usize, cmp: impl Fn(&[u8], &[u8]) -> std::cmp::Ordering) {
    let n = base.len() / size;
    let mut items: Vec<Vec<u8>> = (0..n)
        .map(|i| base[i * size..(i + 1) * size].to_vec())
        .collect();
    items.sort_by(|a, b| cmp(a, b));
    for (i, it) in items.iter().enumerate() {
        base[i * size..(i + 1) * size].copy_from_slice(it);
    }
}
