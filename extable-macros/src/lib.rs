//! Proc-macros that emit `__ex_table` entries. Use them through `extable-runtime`, which
//! re-exports them (`extable_runtime::asm!`, `#[extable_runtime::extable]`,
//! `#[extable_runtime::handler]`); this crate is an implementation detail.
//!
//! # Marks
//!
//! Marks work in `extable_runtime::asm!` and in the `asm!` blocks of an `#[extable]`
//! function, which the attribute rewrites; nowhere else. A plain `core::arch::asm!` passes
//! `[ex] ...` to the assembler as it is, which rejects it ("unexpected token at start of
//! statement") once the function is code-generated, and no entry is emitted.
//!
//! A template line of `asm!` that starts with a mark covers the one instruction on it:
//!
//! | mark              | the fault resumes at                                            |
//! |-------------------|-----------------------------------------------------------------|
//! | `[ex]`            | the block's fixup (below)                                       |
//! | `[ex => 3f]`      | the numeric local label `3` of the template (`3f` or `3b`)      |
//! | `[ex => {name}]`  | an operand, for example a `label` operand or a `sym`            |
//!
//! For each mark the macro puts a fresh numeric local label on the instruction and emits one
//! entry into `__ex_table` (flags `"aR"`, so `--gc-sections` keeps it):
//! `.long insn - ., fixup - ., handler - .`. The label numbers are chosen to differ from
//! every number written in the block's template strings and never consist of the digits 0
//! and 1 only, which Intel syntax would read as binary (`10b`).
//!
//! The block's fixup for `[ex]` marks is either
//! * the Rust block of a label operand named `fixup` (`fixup = label { ... }`, asm goto;
//!   only for blocks without outputs, as asm goto with outputs is unstable), or
//! * otherwise, an out-of-line stub in `.text.fixup` that flags a fault record and resumes
//!   after the block. The expansion then evaluates to `Result<(), Fault>`, so a loaded
//!   value can never be mistaken for an error. The record's address travels in a
//!   callee-saved register the block does not name (x86_64 r12–r15, ARM r4/r5/r8/r10,
//!   AArch64 x20–x28); the default handler writes the trap into it.
//!
//! `handler = NAME` picks the handler of every entry of the block: `default`, `fault`,
//! `uaccess`, `efault::<ERR, ZERO>` (the built-ins of `extable_runtime::handlers`) or a path to
//! any function of type `extable_runtime::Handler`. The registers a built-in handler writes
//! (`fault`: the return register; `efault`: `ERR` and `ZERO` unless `NO_REG`) are added as
//! clobbers unless the block declares them as outputs, and never carry the fault record. A
//! custom handler may write only registers its block declares as outputs.
//!
//! Misuse is a compile error on the culprit: an unknown mark such as `[exx]` (named, with
//! `[ex]` suggested), a mark that does not start its line, a mark
//! on a directive, a label or an empty line, two instructions after one mark (`#` is an
//! immediate on ARM and AArch64, not a comment), a malformed mark or target, a `fixup` label
//! with outputs, `nomem`/`readonly`/`pure`/`noreturn` with a recorded fault, an unknown
//! handler or one of the wrong type, a register a built-in handler writes that the block
//! takes as an input only or that cannot be an operand, an `efault` register that is not a
//! literal.

mod arch;
mod args;
mod attr;
mod expand;
mod template;
mod writes;

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::Token;

/// `KRATE; ASM ARGS`: the input of [`__asm!`], with `$crate` of `extable-runtime` first.
struct AsmInput {
    krate: proc_macro2::TokenStream,
    args: args::AsmArgs,
}

impl Parse for AsmInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut krate = proc_macro2::TokenStream::new();
        while !input.peek(Token![;]) {
            if input.is_empty() {
                return Err(input.error("expected `$crate;` before the asm! arguments"));
            }
            let tt: proc_macro2::TokenTree = input.parse()?;
            krate.extend(std::iter::once(tt));
        }
        input.parse::<Token![;]>()?;
        Ok(AsmInput {
            krate,
            args: input.parse()?,
        })
    }
}

/// The engine of `extable_runtime::asm!`; not for direct use.
///
/// Input: the path of `extable_runtime` (the `$crate` of the wrapper), `;`, then everything
/// `core::arch::asm!` takes plus marks and `handler = NAME`.
#[doc(hidden)]
#[proc_macro]
pub fn __asm(input: TokenStream) -> TokenStream {
    let span = proc_macro2::Span::call_site();
    let parsed = syn::parse_macro_input!(input as AsmInput);
    match expand::expand(&parsed.krate, &parsed.args, span) {
        Ok(exp) => exp.tokens.into(),
        Err(e) => {
            let err = e.to_compile_error();
            quote!({ #err }).into()
        }
    }
}

/// Make every `[ex]`-marked instruction of a function's `asm!` blocks recoverable; a fault
/// becomes the function's error return.
///
/// Inside the function, write the standard `asm!` (`asm!`, `core::arch::asm!` or
/// `std::arch::asm!`) with marks. A fault at a marked instruction (a `[ex]` mark without a
/// `fixup` label) returns from the function with
/// * `Err(E::from(fault))` when it returns `Result<T, E>` (`E: From<Fault>`),
/// * `None` when it returns `Option<T>`,
/// * `EXPR` with `#[extable(on_fault = EXPR)]`, for example the number of bytes not
///   copied, held in an output of the block: outputs keep the values their registers had at
///   the faulting instruction.
///
/// Any other return type is a compile error at the mark. `crate = PATH` names
/// `extable_runtime` if it is not a direct dependency under that name.
#[proc_macro_attribute]
pub fn extable(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = syn::parse_macro_input!(args as attr::ExtableArgs);
    let func = syn::parse_macro_input!(item as syn::ItemFn);
    attr::extable(args, func)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declare a custom handler: checks at compile time that the function has the
/// `extable_runtime::Handler` signature
/// `fn(&ExceptionTableEntry, &mut dyn ExRegs, &Trap) -> bool` (safe, Rust ABI, no type
/// parameters). Use it with `handler = path::to::it` in `extable_runtime::asm!`.
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = syn::parse_macro_input!(args as attr::HandlerArgs);
    let func = syn::parse_macro_input!(item as syn::ItemFn);
    let original = func.clone();
    attr::handler(args, func)
        .unwrap_or_else(|e| {
            // Keep the function so that its users do not add errors.
            let e = e.into_compile_error();
            quote!(#original #e)
        })
        .into()
}
