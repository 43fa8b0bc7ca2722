//! Planning a sort: the bytes to write and where, computed before anything is written.

use crate::analysis::Analysis;
use crate::check::Checked;
use crate::error::Problem;

/// Bytes to write at a file offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// File offset.
    pub offset: u64,
    /// New bytes.
    pub bytes: Vec<u8>,
    /// What they are, for messages.
    pub what: &'static str,
}

/// The patches that sort a file, and what they do.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Patches, in file order of creation (table, relocations, marker).
    pub patches: Vec<Patch>,
    /// Number of entries that change slots.
    pub moved: usize,
}

impl Plan {
    /// Whether the file is already sorted and marked.
    pub fn is_noop(&self) -> bool {
        self.patches.is_empty()
    }
}

/// Plan the sort of an analysed and checked file. Refuses when the check found errors, when
/// the marker is missing or has no bytes in the file, and for Linux layouts when
/// `scripts/sorttable` would zero a relocation section that does not apply to the table.
/// The sorted table bytes are taken out of `checked`.
pub fn plan(a: &Analysis<'_, '_>, checked: &mut Checked) -> Result<Plan, Problem> {
    if checked.report.has_errors() {
        return Err(Problem::refused(format!(
            "refusing to sort: check found {} error(s)",
            checked.report.errors
        )));
    }
    let marker = a.marker.as_ref().ok_or_else(|| {
        Problem::refused(format!(
            "no {} symbol to mark the table sorted",
            a.layout.marker_symbol()
        ))
    })?;
    let marker_offset = marker.file_offset.ok_or_else(|| {
        Problem::refused(format!(
            "{} has no bytes in the file (in SHT_NOBITS or outside its section)",
            marker.symbol
        ))
    })?;
    let mut plan = Plan {
        moved: checked.moved,
        ..Plan::default()
    };
    let sorted = checked.take_sorted_bytes(&a.table).map_err(|o| {
        Problem::refused(format!(
            "entry {} overflows when moved (field at byte {})",
            o.index, o.field
        ))
    })?;
    if plan.moved > 0 {
        let bytes = sorted
            .ok_or_else(|| Problem::refused("internal error: the check kept no sorted table"))?;
        plan.patches.push(Patch {
            offset: a.table.file_offset,
            bytes,
            what: "table",
        });
    }
    if a.layout.is_linux() {
        plan.patches.extend(linux_relocation_patch(a)?);
    }
    if marker.value != Some(0) {
        plan.patches.push(Patch {
            offset: marker_offset,
            bytes: vec![0; 4],
            what: "marker",
        });
    }
    Ok(plan)
}

/// Linux's `scripts/sorttable` (until 6.13) zero-fills the relocations of `__ex_table`
/// (present with `--emit-relocs`); do the same so the result is byte-identical. Its lookup
/// also matches an `SHT_REL[A]` with `sh_info == 0` placed before the table (such as
/// `.rela.dyn`), which it would wipe: that is refused instead of copied.
fn linux_relocation_patch(a: &Analysis<'_, '_>) -> Result<Option<Patch>, Problem> {
    let Some(rel) = a.linux_zeroed_relocations() else {
        return Ok(None);
    };
    if rel.info as usize != a.section.index {
        return Err(Problem::refused(format!(
            "Linux's sorttable would zero the unrelated relocation section {} (sh_info 0, placed before \
             __ex_table); refusing to reproduce that",
            rel.display_name()
        )));
    }
    if !rel.has_file_bytes() || rel.size == 0 {
        return Ok(None);
    }
    a.image.file_slice(rel.offset, rel.size).ok_or_else(|| {
        Problem::malformed(format!(
            "section {} lies outside the file",
            rel.display_name()
        ))
    })?;
    Ok(Some(Patch {
        offset: rel.offset,
        bytes: vec![0; rel.size as usize],
        what: "relocations",
    }))
}
