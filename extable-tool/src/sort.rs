//! Planning a sort: the bytes to write and where, computed before anything is written.

use crate::analysis::Analysis;
use crate::check::{Checked, UNSORTED_BUT_MARKED};
use crate::error::Problem;
use crate::report::{Report, Severity};

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
    /// For a table whose marker says sorted while it is not: the marker set to "sort
    /// needed", written in place before any patch, so that an interrupted repair leaves
    /// what an interrupted sort does (a marker that makes the boot sort the table, and the
    /// next `sort` finish). A new file needs none: it is renamed into place only whole.
    pub reopen: Option<Patch>,
    /// Number of entries that change slots.
    pub moved: usize,
}

impl Plan {
    /// Whether the file is already sorted and marked: no byte would change.
    pub fn is_noop(&self) -> bool {
        self.patches.is_empty()
    }
}

impl Patch {
    fn end(&self) -> u64 {
        self.offset.saturating_add(self.bytes.len() as u64)
    }

    fn overlaps(&self, offset: u64, len: u64) -> bool {
        len > 0
            && !self.bytes.is_empty()
            && self.offset < offset.saturating_add(len)
            && offset < self.end()
    }

    /// The part of this patch that differs from `current` (the bytes it replaces), or
    /// `None` when it changes nothing.
    fn changes_to(self, current: &[u8]) -> Option<Patch> {
        let differs = |(new, old): (&u8, &u8)| new != old;
        let pairs = || self.bytes.iter().zip(current);
        let first = pairs().position(differs)?;
        let last = self.bytes.len() - 1 - pairs().rev().position(differs)?;
        Some(Patch {
            offset: self.offset + first as u64,
            bytes: self.bytes[first..=last].to_vec(),
            what: self.what,
        })
    }
}

/// Refuse a plan whose patches lie outside the file, overlap one another, overlap the ELF
/// header, the program or section header tables, or (for the marker and relocation
/// patches) the table itself.
pub fn validate(a: &Analysis<'_, '_>, patches: &[Patch]) -> Result<(), Problem> {
    let table_len = a.table.bytes.len() as u64;
    for (i, p) in patches.iter().enumerate() {
        if a.image.file_slice(p.offset, p.bytes.len() as u64).is_none() {
            return Err(Problem::malformed(format!(
                "the {} (offset {:#x}, {} bytes) lies outside the file",
                p.what,
                p.offset,
                p.bytes.len()
            )));
        }
        let clash = |other: &str| {
            Problem::refused(format!(
                "refusing to sort: the {} (offset {:#x}, {} bytes) would overwrite {other}",
                p.what,
                p.offset,
                p.bytes.len()
            ))
        };
        for &(offset, len, name) in &a.image.headers {
            if p.overlaps(offset, len) {
                return Err(clash(name));
            }
        }
        if p.what != TABLE && p.overlaps(a.table.file_offset, table_len) {
            return Err(clash("__ex_table"));
        }
        if let Some(q) = patches[..i]
            .iter()
            .find(|q| p.overlaps(q.offset, q.bytes.len() as u64))
        {
            return Err(clash(&format!("the {}", q.what)));
        }
    }
    Ok(())
}

/// [`Patch::what`] of the sorted table.
pub const TABLE: &str = "table";
/// [`Patch::what`] of the sort marker, which an in-place write makes durable last.
pub const MARKER: &str = "marker";

/// Plan the sort of an analysed and checked file. Refuses when the check found errors (but
/// for a table marked sorted that is not, which the sort repairs: see [`Plan::reopen`]), when
/// the marker is missing or has no bytes in the file, when a patch would overwrite another
/// one, the table or the headers ([`validate`]), and for Linux layouts when
/// `scripts/sorttable` would zero a relocation section that does not apply to the table.
/// The sorted table bytes are taken out of `checked`. The patches keep only the bytes that
/// change, and the relocations are zeroed only when the table or the marker changes, so an
/// already sorted and marked file plans none, whatever its relocations hold.
pub fn plan(a: &Analysis<'_, '_>, checked: &mut Checked) -> Result<Plan, Problem> {
    let repairing = take_on_marked_unsorted(&mut checked.report);
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
            what: TABLE,
        });
    }
    // A file already sorted and marked is left as it is, relocations and all: sorttable
    // zeroes them only when it sorts (and since 6.13 not at all).
    let already_done = plan.moved == 0 && marker.value == Some(0);
    if a.layout.is_linux() && !already_done {
        plan.patches.extend(linux_relocation_patch(a)?);
    }
    plan.patches.push(Patch {
        offset: marker_offset,
        bytes: vec![0; 4],
        what: MARKER,
    });
    validate(a, &plan.patches)?;
    plan.patches = std::mem::take(&mut plan.patches)
        .into_iter()
        .filter_map(|p| {
            let current = a.image.file_slice(p.offset, p.bytes.len() as u64)?;
            p.changes_to(current)
        })
        .collect();
    if repairing && !plan.patches.is_empty() {
        // The marker already says sorted: it is set to "sort needed" first, and cleared
        // again last.
        plan.reopen = Some(Patch {
            offset: marker_offset,
            bytes: a.image.endian.u32_bytes(1).to_vec(),
            what: MARKER,
        });
        plan.patches.push(Patch {
            offset: marker_offset,
            bytes: vec![0; 4],
            what: MARKER,
        });
    }
    Ok(plan)
}

/// Take on the one error that sorting cures, a table marked sorted that is not: its
/// finding becomes a warning that says the sort repairs it. Returns whether there was one.
fn take_on_marked_unsorted(report: &mut Report) -> bool {
    let mut found = 0;
    for f in report
        .findings
        .iter_mut()
        .filter(|f| f.rule == UNSORTED_BUT_MARKED && f.severity == Severity::Error)
    {
        f.severity = Severity::Warning;
        f.message.push_str("; sorting repairs it");
        found += 1;
    }
    report.errors = report.errors.saturating_sub(found);
    report.warnings += found;
    found > 0
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
