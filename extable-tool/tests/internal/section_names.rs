//! `Image` reads section names itself (not through `object`'s string lookup): on files
//! whose name table and name offsets are damaged at random, it finds the names `object`
//! finds, and fails where `object` fails.

use super::common::elfgen::*;
use extable_tool::elf::Image;
use object::read::elf::FileHeader;
use object::Endianness;
use proptest::prelude::*;

fn file() -> Vec<u8> {
    let mut e = Elf::new(true, false, EM_X86_64);
    e.add_section(Sec::progbits(
        ".text",
        SHF_ALLOC | SHF_EXECINSTR,
        0x1000,
        vec![0xcc; 64],
    ));
    e.add_section(Sec::progbits("__ex_table", SHF_ALLOC, 0x2000, vec![0; 12]));
    e.add_section(Sec::progbits(
        ".data",
        SHF_ALLOC | SHF_WRITE,
        0x3000,
        vec![0; 8],
    ));
    e.build()
}

/// The section names as `object` reads them, or its error.
fn objects_names(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let header = object::elf::FileHeader64::<Endianness>::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let table = header.sections(endian, data).map_err(|e| e.to_string())?;
    table
        .iter()
        .map(|sh| {
            table
                .section_name(endian, sh)
                .map(<[u8]>::to_vec)
                .map_err(|e| e.to_string())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn section_names_are_objects(
        shstrndx in prop_oneof![Just(None), (0u16..8).prop_map(Some)],
        names in prop::collection::vec((0usize..8, any::<u32>()), 0..4),
        shstrtab in prop::option::of((any::<u32>(), any::<u16>())),
        small in any::<bool>(),
    ) {
        let mut data = file();
        let (shoff, shentsize) = (
            u64::from_le_bytes(data[0x28..0x30].try_into().unwrap()) as usize,
            64,
        );
        let shnum = u16::from_le_bytes([data[0x3c], data[0x3d]]) as usize;
        if let Some(i) = shstrndx {
            data[0x3e..0x40].copy_from_slice(&i.to_le_bytes());
        }
        for (section, name) in names {
            let at = shoff + (section % shnum) * shentsize;
            let name = if small { name % 64 } else { name };
            data[at..at + 4].copy_from_slice(&name.to_le_bytes());
        }
        if let Some((offset, size)) = shstrtab {
            let index = u16::from_le_bytes([data[0x3e], data[0x3f]]) as usize;
            if index < shnum {
                let at = shoff + index * shentsize;
                let offset = if small { offset % 0x4000 } else { offset };
                data[at + 0x18..at + 0x20].copy_from_slice(&u64::from(offset).to_le_bytes());
                data[at + 0x20..at + 0x28].copy_from_slice(&u64::from(size).to_le_bytes());
            }
        }
        let ours = Image::parse(&data).map(|i| i.sections.iter().map(|s| s.name.to_vec()).collect::<Vec<_>>());
        match (ours, objects_names(&data)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            // Other checks of `Image` may refuse a file whose names are fine.
            (Err(_), Ok(_)) => {}
            (Ok(a), Err(b)) => prop_assert!(false, "ours {:?}, object: {}", a, b),
        }
    }
}
