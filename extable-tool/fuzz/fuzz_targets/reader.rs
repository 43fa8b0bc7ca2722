//! Fuzz the ELF reader and every read-only path over it: parse, layout detection, checks,
//! dump with DWARF lines and sort planning. Any panic is a bug.
#![no_main]

use extable_tool::{inspect_bytes, Layout, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks a forced layout (or detection), the rest is the file.
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let layouts = Layout::ALL;
    let layout: Option<Layout> = layouts.get(pick as usize % (layouts.len() + 1)).copied();
    let _ = inspect_bytes(
        file,
        &Options {
            layout,
            ..Default::default()
        },
    );
});
