//! Code generation for a marked `asm!` block.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, LitStr};

use crate::arch::{Arch, ARCHES};
use crate::args::{AsmArgs, Operand, Template};
use crate::template::{numbers_used, scan, Labels, Line, ScannedLit, Target};
use crate::writes::{self, Need, Written};

/// The flags of every `__ex_table` piece: must equal `extable_runtime::entry::ASM_SECTION_FLAGS`
/// (a test in extable-runtime checks the emitted section against it).
pub const SECTION_FLAGS: &str = "aR";

/// The section of the out-of-line fixup stubs (as Linux's ARM `.text.fixup`).
pub const FIXUP_SECTION: &str = ".text.fixup";

/// How `[ex]` marks (without an explicit target) are fixed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// No `[ex]` mark: every mark names its own target.
    ExplicitOnly,
    /// `[ex]` marks resume at the Rust block of the `fixup = label { ... }` operand.
    Label,
    /// `[ex]` marks resume at a stub that flags the fault record and jumps past the block;
    /// the expansion evaluates to `Result<(), Fault>`.
    Record,
}

/// The expansion of one marked block.
pub struct Expansion {
    pub tokens: TokenStream,
    pub mode: Mode,
}

/// A template piece after scanning.
enum Piece {
    Lit(ScannedLit),
    Other(syn::Macro),
}

/// The block's marks resolved to assembler text.
struct Plan<'a> {
    pieces: Vec<Piece>,
    mode: Mode,
    /// One label number per mark, in order.
    insn_labels: Vec<u64>,
    stub_label: u64,
    end_label: u64,
    args: &'a AsmArgs,
}

/// A span for identifiers the expansion introduces: hygienic like `macro_rules!` locals.
fn hygienic(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// The handler operand's name in the generated template.
const HANDLER_OPERAND: &str = "__extable_handler";

/// Expand a marked `asm!` block. `krate` is the path of `extable_runtime`.
pub fn expand(krate: &TokenStream, args: &AsmArgs, call_span: Span) -> syn::Result<Expansion> {
    let plan = plan(args, call_span)?;
    check_options(&plan)?;
    let written = writes::written(args)?;
    let handler_check = handler_check(krate, args);
    let tokens = match plan.mode {
        Mode::Record => expand_record(krate, &plan, handler_check, &written)?,
        Mode::Label | Mode::ExplicitOnly if written.is_empty() => {
            let handler = handler_path(krate, args, None);
            let asm = asm_call(&plan, &handler, None, Vec::new());
            quote!({ #handler_check #asm })
        }
        Mode::Label | Mode::ExplicitOnly => {
            let handler = handler_path(krate, args, None);
            let variants = ARCHES.iter().map(|arch| {
                let cfg = arch.cfg;
                match clobbers(&plan, arch.cfg, &written) {
                    Ok(extra) => {
                        let asm = asm_call(&plan, &handler, None, extra);
                        quote!(#[cfg(target_arch = #cfg)] #asm;)
                    }
                    Err(msg) => quote!(#[cfg(target_arch = #cfg)] ::core::compile_error!(#msg);),
                }
            });
            let cfgs = ARCHES.iter().map(|a| a.cfg);
            quote!({
                #handler_check
                #(#variants)*
                #[cfg(not(any(#(target_arch = #cfgs),*)))]
                ::core::compile_error!("extable: `[ex]` marks are supported on x86_64, arm and aarch64 only");
            })
        }
    };
    Ok(Expansion {
        tokens,
        mode: plan.mode,
    })
}

/// Scan the templates, choose the mode and the labels.
fn plan(args: &AsmArgs, call_span: Span) -> syn::Result<Plan<'_>> {
    let mut pieces = Vec::new();
    for t in &args.templates {
        pieces.push(match t {
            Template::Lit(lit) => Piece::Lit(scan(lit)?),
            Template::Other(m) => Piece::Other(m.clone()),
        });
    }
    let targets: Vec<&Target> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Lit(s) => Some(s.targets()),
            Piece::Other(_) => None,
        })
        .flatten()
        .collect();
    if targets.is_empty() {
        let span = args
            .templates
            .first()
            .map(|t| match t {
                Template::Lit(l) => l.span(),
                Template::Other(m) => m.span(),
            })
            .unwrap_or(call_span);
        return Err(syn::Error::new(
            span,
            "no `[ex]` mark in this block: mark each instruction that may fault with `[ex]` at the start of its line, or use `core::arch::asm!`",
        ));
    }
    let block_marks = targets.iter().any(|t| **t == Target::Block);
    let mode = match (block_marks, args.fixup_label().is_some()) {
        (false, _) => Mode::ExplicitOnly,
        (true, true) => Mode::Label,
        (true, false) => Mode::Record,
    };
    if mode == Mode::Label {
        if let Some(out) = args.operands.iter().find(|o| o.is_output()) {
            return Err(syn::Error::new(
                out.span(),
                "a `fixup = label { ... }` block cannot have outputs on stable Rust (asm goto with outputs is unstable): remove the `fixup` label to get the out-of-line fixup, which resumes after the block with an error",
            ));
        }
    }
    let lits: Vec<&LitStr> = args
        .templates
        .iter()
        .filter_map(|t| match t {
            Template::Lit(l) => Some(l),
            Template::Other(_) => None,
        })
        .collect();
    let mut labels = Labels::new(numbers_used(&lits));
    let insn_labels = targets.iter().map(|_| labels.fresh()).collect();
    let stub_label = labels.fresh();
    let end_label = labels.fresh();
    Ok(Plan {
        pieces,
        mode,
        insn_labels,
        stub_label,
        end_label,
        args,
    })
}

/// Options that contradict a recorded fault.
fn check_options(plan: &Plan) -> syn::Result<()> {
    if plan.mode != Mode::Record {
        return Ok(());
    }
    for name in plan.args.option_names() {
        let why = match name.to_string().as_str() {
            "nomem" | "readonly" | "pure" => {
                "the out-of-line fixup writes the fault record to memory, so a block with `[ex]` marks cannot be `nomem`, `readonly` or `pure`"
            }
            "noreturn" => {
                "a fixed fault resumes after the block, so a block with `[ex]` marks cannot be `noreturn`; give the marks an explicit target (`[ex => 3f]`) instead"
            }
            _ => continue,
        };
        return Err(syn::Error::new(name.span(), why));
    }
    Ok(())
}

/// The clobbers (`out("REG") _`) that declare the registers the handler writes on `arch`, or
/// the message of the compile error when the block cannot declare one.
fn clobbers(plan: &Plan, arch: &str, written: &[Written]) -> Result<Vec<TokenStream>, String> {
    let handler = plan
        .args
        .handler
        .as_ref()
        .map(|h| h.path.to_token_stream().to_string().replace(' ', ""))
        .unwrap_or_default();
    let mut out = Vec::new();
    for &w in written {
        match writes::need(plan.args, arch, w, &handler) {
            Need::Clobber(name) => out.push(quote!(out(#name) _)),
            Need::Declared => {}
            Need::Error(msg) => return Err(format!("extable: {msg}")),
        }
    }
    Ok(out)
}

/// `let _: Handler = PATH;` for a user handler: a wrong signature is a type error there.
fn handler_check(krate: &TokenStream, args: &AsmArgs) -> TokenStream {
    match &args.handler {
        Some(h) if builtin(&h.path).is_none() && !is_one_word_efault(&h.path) => {
            let path = &h.path;
            quote_spanned!(path.span()=> let _: #krate::Handler = #path;)
        }
        _ => TokenStream::new(),
    }
}

/// The built-in handler a one-word path names (`efault::<..>` is a path with generics, handled
/// as a user path that [`writes`] recognises).
fn builtin(path: &syn::ExprPath) -> Option<&Ident> {
    let ident = path.path.get_ident()?;
    ["default", "fault", "uaccess"]
        .contains(&ident.to_string().as_str())
        .then_some(ident)
}

/// Whether the path is `efault::<ERR, ZERO>`, the built-in named by one word.
fn is_one_word_efault(path: &syn::ExprPath) -> bool {
    path.qself.is_none()
        && path.path.leading_colon.is_none()
        && path.path.segments.len() == 1
        && path.path.segments[0].ident == "efault"
}

/// The handler every mark of the block uses: the user's, or the mode's default.
fn handler_path(krate: &TokenStream, args: &AsmArgs, record_reg: Option<u8>) -> TokenStream {
    match (&args.handler, record_reg) {
        (Some(h), _) => match builtin(&h.path) {
            Some(name) => quote!(#krate::handlers::#name),
            None if is_one_word_efault(&h.path) => {
                let path = &h.path;
                quote!(#krate::handlers::#path)
            }
            None => h.path.to_token_stream(),
        },
        (None, Some(n)) => quote!(#krate::uaccess::__private::record::<#n>),
        (None, None) => quote!(#krate::handlers::default),
    }
}

/// The assembler text of one mark: a label on the instruction and the entry.
fn mark_text(insn: &str, label: u64, fixup: &str) -> String {
    format!(
        "{label}: {insn}\n.pushsection __ex_table, \"{SECTION_FLAGS}\"\n.balign 4\n.long {label}b - .\n.long {fixup} - .\n.long {{{HANDLER_OPERAND}}} - .\n.popsection"
    )
}

/// The fixup text of a target.
fn fixup_text(plan: &Plan, target: &Target) -> String {
    match (target, plan.mode) {
        (Target::Explicit(t), _) => t.clone(),
        (Target::Block, Mode::Label) => "{fixup}".to_string(),
        (Target::Block, _) => format!("{}f", plan.stub_label),
    }
}

/// The rewritten template pieces, with `trailer` appended (if any).
fn templates(plan: &Plan, trailer: Option<String>) -> Vec<TokenStream> {
    let mut labels = plan.insn_labels.iter();
    let mut out = Vec::new();
    for piece in &plan.pieces {
        match piece {
            Piece::Other(m) => out.push(m.to_token_stream()),
            Piece::Lit(s) => {
                let lines: Vec<String> = s
                    .lines
                    .iter()
                    .map(|l| match l {
                        Line::Plain(text) => text.clone(),
                        Line::Marked { insn, target } => {
                            let label = *labels.next().expect("one label per mark");
                            mark_text(insn, label, &fixup_text(plan, target))
                        }
                    })
                    .collect();
                let lit = LitStr::new(&lines.join("\n"), s.lit.span());
                out.push(lit.to_token_stream());
            }
        }
    }
    if let Some(t) = trailer {
        out.push(LitStr::new(&t, Span::call_site()).to_token_stream());
    }
    out
}

/// The `asm!` call: templates, the user's operands with the handler operand placed before
/// the explicit-register operands, then `extra` (an explicit register operand), options
/// and `clobber_abi`.
fn asm_call(
    plan: &Plan,
    handler: &TokenStream,
    trailer: Option<String>,
    extra: Vec<TokenStream>,
) -> TokenStream {
    let args = plan.args;
    let templates = templates(plan, trailer);
    let handler_name = Ident::new(HANDLER_OPERAND, Span::call_site());
    let handler_op = quote!(#handler_name = sym #handler);
    let first_explicit = args
        .operands
        .iter()
        .position(|o| o.explicit_reg().is_some())
        .unwrap_or(args.operands.len());
    let mut operands: Vec<TokenStream> = Vec::new();
    operands.extend(
        args.operands[..first_explicit]
            .iter()
            .map(Operand::to_token_stream),
    );
    operands.push(handler_op);
    operands.extend(
        args.operands[first_explicit..]
            .iter()
            .map(Operand::to_token_stream),
    );
    operands.extend(extra);
    operands.extend(args.clobber_abis.iter().cloned());
    operands.extend(args.options.iter().map(|o| o.tokens.clone()));
    quote!(::core::arch::asm!(#(#templates,)* #(#operands),*))
}

/// The record-mode expansion: one variant per architecture.
fn expand_record(
    krate: &TokenStream,
    plan: &Plan,
    handler_check: TokenStream,
    written: &[Written],
) -> syn::Result<TokenStream> {
    let rec = hygienic("__extable_rec");
    let taken: Vec<String> = plan
        .args
        .operands
        .iter()
        .filter_map(|o| o.explicit_reg().map(LitStr::value))
        .collect();
    let mut variants = Vec::new();
    for arch in ARCHES {
        variants.push(record_variant(krate, plan, arch, &taken, &rec, written)?);
    }
    let cfgs = ARCHES.iter().map(|a| a.cfg);
    Ok(quote!({
        let mut #rec = #krate::uaccess::__private::FaultRecord::new();
        #handler_check
        #(#variants)*
        #[cfg(not(any(#(target_arch = #cfgs),*)))]
        ::core::compile_error!("extable: `[ex]` marks are supported on x86_64, arm and aarch64 only");
        #rec.result()
    }))
}

/// The record-mode `asm!` call for one architecture.
fn record_variant(
    krate: &TokenStream,
    plan: &Plan,
    arch: &Arch,
    taken: &[String],
    rec: &Ident,
    written: &[Written],
) -> syn::Result<TokenStream> {
    let cfg = arch.cfg;
    let mut extra = match clobbers(plan, arch.cfg, written) {
        Ok(extra) => extra,
        Err(msg) => return Ok(quote!(#[cfg(target_arch = #cfg)] ::core::compile_error!(#msg);)),
    };
    // A register the handler writes cannot carry the record's address.
    let mut taken = taken.to_vec();
    taken.extend(writes::aliases(arch.cfg, written));
    let Some(reg) = arch.free_record_reg(&taken) else {
        let names: Vec<&str> = arch.record_regs.iter().map(|r| r.name).collect();
        return Ok(quote!(
            #[cfg(target_arch = #cfg)]
            ::core::compile_error!(concat!(
                "extable: the block uses every register that can carry the fault record on ",
                #cfg, " (", #(#names, " "),* , "); leave one free"
            ));
        ));
    };
    let handler = handler_path(krate, plan.args, Some(reg.number));
    let stub = (arch.stub)(
        reg.name,
        plan.stub_label,
        plan.end_label,
        plan.args.att_syntax(),
    );
    let trailer = format!(
        "{end}:\n.pushsection {FIXUP_SECTION}, \"ax\"\n{stub}\n.popsection",
        end = plan.end_label
    );
    let reg_name = reg.name;
    extra.push(quote!(in(#reg_name) ::core::ptr::addr_of_mut!(#rec)));
    let asm = asm_call(plan, &handler, Some(trailer), extra);
    Ok(quote!(
        #[cfg(target_arch = #cfg)]
        #asm;
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion of `asm!(ARGS)` as text, without spaces.
    fn expanded(args: &str) -> String {
        let args: AsmArgs = syn::parse_str(args).expect("parses");
        let e = expand(&quote!(krate), &args, Span::call_site()).expect("expands");
        e.tokens.to_string().replace(' ', "")
    }

    #[test]
    fn the_registers_built_in_handlers_write_become_clobbers_on_every_arch() {
        let fault = expanded(
            r#""[ex => 3f] mov {t}, [{p}]", "3:", p = in(reg) 0, t = out(reg) _, handler = fault"#,
        );
        for reg in ["rax", "r0", "x0"] {
            assert!(
                fault.contains(&format!("out(\"{reg}\")_")),
                "{reg}: {fault}"
            );
        }
        let efault = expanded(
            r#""[ex] mov {t}, [{p}]", p = in(reg) 0, t = out(reg) _, handler = efault::<2, 1>"#,
        );
        for reg in ["rdx", "rcx", "r2", "r1", "x2", "x1"] {
            assert!(
                efault.contains(&format!("out(\"{reg}\")_")),
                "{reg}: {efault}"
            );
        }
        assert!(efault.contains("krate::handlers::efault::<2,1>"));
        // Declared by the block already: no second operand for the register.
        let declared = expanded(
            r#""[ex => 3f] mov {t}, [{p}]", "3:", p = in(reg) 0, t = out(reg) _, inout("rax") 0 => _, handler = fault"#,
        );
        assert!(!declared.contains("out(\"rax\")_"), "{declared}");
        // A register the handler writes never carries the fault record.
        let record = expanded(
            r#""[ex] mov {t}, [{p}]", p = in(reg) 0, t = out(reg) _, handler = efault::<12, 13>"#,
        );
        assert!(record.contains("in(\"r14\")"), "{record}");
    }
}
