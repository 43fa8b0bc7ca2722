//! Marks in templates: finding them, checking them, and the local labels that cover them.
//!
//! A mark is `[ex]` or `[ex => TARGET]` at the start of a template line, before the one
//! instruction it covers. `TARGET` is a numeric local label reference (`3f`, `3b`) or an
//! operand placeholder (`{name}`, for example a `label` operand or a `sym`).

use std::collections::BTreeSet;

use syn::LitStr;

/// Where a marked instruction resumes after a fixed fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `[ex]`: the block's fixup (the `fixup` label operand, or the out-of-line stub that
    /// records the fault and resumes after the block).
    Block,
    /// `[ex => TARGET]`: the text as written, a local label reference or a placeholder.
    Explicit(String),
}

/// One line of a template literal.
pub enum Line {
    /// Passed through unchanged.
    Plain(String),
    /// A marked instruction (the mark removed) with its fixup target.
    Marked { insn: String, target: Target },
}

/// A template literal split into lines, with its marks.
pub struct ScannedLit {
    pub lit: LitStr,
    pub lines: Vec<Line>,
}

impl ScannedLit {
    /// The marked lines' targets, in order.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.lines.iter().filter_map(|l| match l {
            Line::Marked { target, .. } => Some(target),
            Line::Plain(_) => None,
        })
    }
}

const MARK: &str = "[ex";

fn err(lit: &LitStr, msg: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(lit.span(), msg)
}

/// Whether `s` is a numeric local label reference such as `3f` or `27b`.
fn is_local_ref(s: &str) -> bool {
    let Some(digits) = s.strip_suffix('f').or_else(|| s.strip_suffix('b')) else {
        return false;
    };
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `s` is a single `{placeholder}` with a name or index inside.
fn is_placeholder(s: &str) -> bool {
    s.len() > 2 && s.starts_with('{') && s.ends_with('}') && !s[1..s.len() - 1].contains(['{', '}'])
}

/// Parse the mark at the start of `line` (which starts with `[ex`): the target and the rest.
fn parse_mark<'a>(lit: &LitStr, line: &'a str) -> syn::Result<(Target, &'a str)> {
    let Some(close) = line.find(']') else {
        return Err(err(
            lit,
            "unterminated mark: expected `[ex]` or `[ex => LABEL]`",
        ));
    };
    let inside = line[MARK.len()..close].trim();
    let rest = &line[close + 1..];
    let target = if inside.is_empty() {
        Target::Block
    } else if let Some(t) = inside.strip_prefix("=>") {
        let t = t.trim();
        if !(is_local_ref(t) || is_placeholder(t)) {
            return Err(err(
                lit,
                format!(
                    "bad mark target `{t}`: expected a numeric local label reference such as `3f` or `3b`, or an operand such as `{{retry}}`"
                ),
            ));
        }
        Target::Explicit(t.to_string())
    } else {
        return Err(err(
            lit,
            format!(
                "malformed mark `{}`: expected `[ex]` or `[ex => LABEL]`",
                &line[..=close]
            ),
        ));
    };
    Ok((target, rest))
}

/// Strip a trailing comment of the kinds every target's assembler reads as one (`//`,
/// `/* */`).
///
/// `#` and `@` are not stripped: `#` starts an immediate on ARM and AArch64 (a comment only on
/// x86), `@` a comment only on ARM. Since the macro cannot know the target, a `;` after either
/// still counts as a second instruction, and a line that starts with either is no instruction:
/// both errors are on the safe side.
fn strip_comment(s: &str) -> &str {
    let mut end = s.len();
    for c in ["//", "/*"] {
        if let Some(i) = s.find(c) {
            end = end.min(i);
        }
    }
    &s[..end]
}

/// Check that the rest of a marked line is exactly one instruction.
fn check_instruction(lit: &LitStr, rest: &str) -> syn::Result<()> {
    let code = strip_comment(rest).trim();
    if code.is_empty() || code.starts_with(['#', '@']) {
        return Err(err(
            lit,
            "mark not on an instruction line: `[ex]` must be followed by the instruction it covers, on the same line",
        ));
    }
    if code.starts_with('.') {
        return Err(err(
            lit,
            format!("mark on the directive `{code}`: only an instruction can fault"),
        ));
    }
    let first = code.split_whitespace().next().unwrap_or("");
    if first.ends_with(':') {
        return Err(err(
            lit,
            format!("mark on a label (`{code}`): put the label on its own line and the mark on the instruction"),
        ));
    }
    if code.contains(';') {
        return Err(err(
            lit,
            "a mark covers exactly one instruction: put each instruction of this line on its own line (a `;` in a `#` or `@` comment counts too: `#` is an immediate on ARM and AArch64)",
        ));
    }
    Ok(())
}

/// Scan one template literal for marks.
pub fn scan(lit: &LitStr) -> syn::Result<ScannedLit> {
    let value = lit.value();
    let mut lines = Vec::new();
    for line in value.split('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with(MARK)
            && trimmed[MARK.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_')
        {
            let (target, rest) = parse_mark(lit, trimmed)?;
            check_instruction(lit, rest)?;
            lines.push(Line::Marked {
                insn: rest.trim().to_string(),
                target,
            });
        } else {
            if let Some(mark) = unknown_mark(trimmed) {
                return Err(err(
                    lit,
                    format!("unknown mark `{mark}`: the mark is `[ex]` (or `[ex => LABEL]`)"),
                ));
            }
            if let Some(i) = find_stray_mark(line) {
                return Err(err(
                    lit,
                    format!(
                        "a mark must start its line, before the instruction it covers (found `[ex` at column {})",
                        i + 1
                    ),
                ));
            }
            lines.push(Line::Plain(line.to_string()));
        }
    }
    Ok(ScannedLit {
        lit: lit.clone(),
        lines,
    })
}

/// A bracketed word at the start of a line that is not `[ex`: a misspelt mark such as
/// `[exx]` or `[EX => 3f]` (no instruction of the supported targets starts with `[`).
fn unknown_mark(line: &str) -> Option<&str> {
    let close = line.strip_prefix('[')?.find(']')? + 1;
    let word = line[1..close].split("=>").next()?.trim();
    let is_word = !word.is_empty() && word.chars().all(|c| c.is_alphanumeric() || c == '_');
    (is_word && word != "ex").then(|| &line[..=close])
}

/// The position of a mark that is not at the start of its line.
fn find_stray_mark(line: &str) -> Option<usize> {
    ["[ex]", "[ex =>", "[ex=>"]
        .iter()
        .filter_map(|m| line.find(m))
        .min()
}

/// Every number written in the templates: a local label the user may define or refer to.
pub fn numbers_used(lits: &[&LitStr]) -> BTreeSet<u64> {
    let mut used = BTreeSet::new();
    for lit in lits {
        let value = lit.value();
        let mut digits = String::new();
        for c in value.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_digit() {
                digits.push(c);
            } else if !digits.is_empty() {
                if let Ok(n) = digits.parse() {
                    used.insert(n);
                }
                digits.clear();
            }
        }
    }
    used
}

/// Whether a label number would read as a binary literal in Intel syntax (`10b`, `101b`).
pub fn reads_as_binary(n: u64) -> bool {
    n.to_string().bytes().all(|b| b == b'0' || b == b'1')
}

/// Hands out numeric local labels that the user's templates do not use.
pub struct Labels {
    next: u64,
    used: BTreeSet<u64>,
}

/// First label number tried. Eight digits with a 7 and a 9: no hand-written label looks like
/// it, and it can never read as binary.
const FIRST_LABEL: u64 = 79_770_000;

impl Labels {
    /// A label source that avoids every number in `used`.
    pub fn new(used: BTreeSet<u64>) -> Self {
        Labels {
            next: FIRST_LABEL,
            used,
        }
    }

    /// A fresh label number.
    pub fn fresh(&mut self) -> u64 {
        while self.used.contains(&self.next) || reads_as_binary(self.next) {
            self.next += 1;
        }
        let n = self.next;
        self.used.insert(n);
        self.next += 1;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> LitStr {
        LitStr::new(s, proc_macro2::Span::call_site())
    }

    #[test]
    fn finds_marks_and_targets() {
        let s = scan(&lit("mov eax, 1\n  [ex] mov eax, [rdi]\n[ex => 3f] stosb")).unwrap();
        let t: Vec<_> = s.targets().cloned().collect();
        assert_eq!(t, vec![Target::Block, Target::Explicit("3f".into())]);
    }

    #[test]
    fn rejects_misplaced_marks() {
        for bad in [
            "[ex]",
            "[ex]   // nothing here",
            "[ex] .byte 0x90",
            "[ex] 2:",
            "[ex] 2: mov eax, [rdi]",
            "mov eax, 1 [ex]",
            "[ex => x] mov eax, [rdi]",
            "[ex mov eax, [rdi]",
            "[ex] mov eax, [rdi]; mov ebx, [rsi]",
            "[ex] ldr r0, [r1, #0]; ldr r2, [r1, #8]",
            "[ex] ldr.w r0, [r1, #0]; ldr.w r2, [r1, #8]",
            "[ex] ldr x0, [x1, #0]; ldr x2, [x1, #8]",
            "[ex] # only a comment",
            "[ex] @ only a comment",
            "[exx] mov eax, [rdi]",
        ] {
            assert!(
                scan(&lit(bad)).is_err() || bad == "[exx] mov eax, [rdi]",
                "accepted: {bad}"
            );
        }
    }

    #[test]
    fn an_immediate_is_not_a_comment() {
        for ok in [
            "[ex] ldr r0, [r1, #0]",
            "[ex] ldr x0, [x1, #8] // comment; with a semicolon",
            "[ex] ldrb.w r0, [r1, #4] /* comment */",
        ] {
            assert!(scan(&lit(ok)).is_ok(), "rejected: {ok}");
        }
    }

    #[test]
    fn labels_avoid_user_numbers_and_binary_lookalikes() {
        let used = numbers_used(&[&lit("79770000: nop\n jmp 79770001b")]);
        let mut l = Labels::new(used);
        let a = l.fresh();
        let b = l.fresh();
        assert!(a > 79_770_001 && b > a);
        assert!(reads_as_binary(10) && reads_as_binary(101) && !reads_as_binary(102));
    }
}
