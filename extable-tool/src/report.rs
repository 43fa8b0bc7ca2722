//! Findings of a check and how they are printed (text lines or JSON).

use serde::Serialize;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// Informational.
    Note,
    /// Suspicious but not wrong.
    Warning,
    /// Wrong: `check` exits 1 and `sort` refuses.
    Error,
}

impl Severity {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// An address named in a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Address {
    /// What it is (`insn`, `fixup`, `handler`, `table`...).
    pub role: &'static str,
    /// The address (a `"0x…"` string in JSON).
    #[serde(serialize_with = "hex")]
    pub addr: u64,
    /// `symbol+offset`, or the address in hex.
    pub symbol: String,
}

/// Serialize an address as a `"0x…"` string: JSON numbers are doubles for most readers
/// (`jq`, JavaScript), which round 64-bit kernel addresses.
pub fn hex<S: serde::Serializer>(addr: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{addr:#x}"))
}

/// `1 entry`, `2 entries`: `n` and the singular or plural noun.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// Rule id, e.g. `insn-not-code`.
    pub rule: &'static str,
    /// Entry index, when the finding is about one entry.
    pub index: Option<usize>,
    /// The addresses involved.
    pub addresses: Vec<Address>,
    /// What is wrong, in words.
    pub message: String,
}

/// The state of the sort marker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MarkerState {
    /// Symbol name.
    pub symbol: String,
    /// Its value in the file, when it has bytes in the file.
    pub value: Option<u32>,
}

/// The result of checking one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The file.
    pub file: String,
    /// Layout checked against.
    pub layout: String,
    /// Number of whole entries.
    pub entries: usize,
    /// The sort marker.
    pub marker: Option<MarkerState>,
    /// Whether the table is in sorted order.
    pub sorted: bool,
    /// Number of error findings (including ones not listed).
    pub errors: usize,
    /// Number of warnings (including ones not listed).
    pub warnings: usize,
    /// Number of notes (including ones not listed).
    pub notes: usize,
    /// The findings (at most [`FINDINGS_PER_RULE`] per rule are listed).
    pub findings: Vec<Finding>,
}

/// How many findings of one rule are listed before the rest are only counted.
pub const FINDINGS_PER_RULE: usize = 100;

impl Report {
    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        self.errors > 0
    }

    /// Whether any warning was found.
    pub fn has_warnings(&self) -> bool {
        self.warnings > 0
    }

    /// One line per finding: `FILE: severity: entry N: message [rule]`.
    pub fn lines(&self) -> Vec<String> {
        self.lines_at_least(Severity::Note)
    }

    /// [`Self::lines`] of the findings at `min` or above (warnings and errors only for
    /// a quiet build step).
    pub fn lines_at_least(&self, min: Severity) -> Vec<String> {
        self.findings
            .iter()
            .filter(|f| f.severity >= min)
            .map(|f| {
                let entry = f.index.map(|i| format!("entry {i}: ")).unwrap_or_default();
                format!(
                    "{}: {}: {entry}{} [{}]",
                    self.file,
                    f.severity.name(),
                    f.message,
                    f.rule
                )
            })
            .collect()
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} table, {}, {}: {}, {}, {}",
            self.file,
            self.layout,
            count(self.entries, "entry", "entries"),
            if self.sorted { "sorted" } else { "unsorted" },
            count(self.errors, "error", "errors"),
            count(self.warnings, "warning", "warnings"),
            count(self.notes, "note", "notes")
        )
    }
}

/// Collects findings, listing at most [`FINDINGS_PER_RULE`] per rule.
#[derive(Debug, Default)]
pub struct Findings {
    list: Vec<Finding>,
    per_rule: std::collections::HashMap<&'static str, (Severity, usize)>,
}

impl Findings {
    /// Record a finding.
    pub fn push(&mut self, f: Finding) {
        let seen = self.per_rule.entry(f.rule).or_insert((f.severity, 0));
        seen.1 += 1;
        if seen.1 <= FINDINGS_PER_RULE {
            self.list.push(f);
        }
    }

    /// Count of findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.per_rule
            .values()
            .filter(|(s, _)| *s == severity)
            .map(|(_, n)| n)
            .sum()
    }

    /// The listed findings, plus one line per rule that had more than were listed.
    pub fn into_list(mut self) -> Vec<Finding> {
        let mut more: Vec<_> = self
            .per_rule
            .iter()
            .filter(|(_, (_, n))| *n > FINDINGS_PER_RULE)
            .map(|(rule, (severity, n))| Finding {
                severity: *severity,
                rule,
                index: None,
                addresses: vec![],
                message: format!(
                    "{} like this not listed",
                    count(n - FINDINGS_PER_RULE, "more finding", "more findings")
                ),
            })
            .collect();
        more.sort_by_key(|f| f.rule);
        self.list.sort_by_key(|f| f.index);
        self.list.extend(more);
        self.list
    }
}
