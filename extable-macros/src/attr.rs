//! `#[extable]` on risky-copy functions and `#[handler]` on custom handlers.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Expr, ItemFn, Macro, ReturnType, Stmt, Token, Type};

use crate::args::AsmArgs;
use crate::expand::{expand, Mode};

/// `crate = PATH`: where `extable_runtime` is (default `::extable_runtime`).
fn default_krate() -> TokenStream {
    quote!(::extable_runtime)
}

/// Arguments of `#[extable(...)]`.
pub struct ExtableArgs {
    krate: TokenStream,
    on_fault: Option<Expr>,
}

impl Parse for ExtableArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = ExtableArgs {
            krate: default_krate(),
            on_fault: None,
        };
        while !input.is_empty() {
            if input.peek(Token![crate]) {
                input.parse::<Token![crate]>()?;
                input.parse::<Token![=]>()?;
                args.krate = input.parse::<syn::Path>()?.to_token_stream();
            } else {
                let key: syn::Ident = input.parse()?;
                if key != "on_fault" {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown `#[extable]` argument `{key}`: expected `on_fault = EXPR` or `crate = PATH`"),
                    ));
                }
                input.parse::<Token![=]>()?;
                args.on_fault = Some(input.parse()?);
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// Arguments of `#[handler(...)]`: only `crate = PATH`.
pub struct HandlerArgs {
    krate: TokenStream,
}

impl Parse for HandlerArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut krate = default_krate();
        if !input.is_empty() {
            input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            krate = input.parse::<syn::Path>()?.to_token_stream();
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(HandlerArgs { krate })
    }
}

/// What a recorded fault turns into.
enum OnFault {
    /// `return Err(fault.into_error())` (`From::from` through `Fault::into_error`).
    Err,
    /// `return None`.
    None,
    /// `return EXPR`.
    Expr(Expr),
}

/// The function's fault return, from its signature and `on_fault`.
fn on_fault(args: &ExtableArgs, sig: &syn::Signature) -> Option<OnFault> {
    if let Some(e) = &args.on_fault {
        return Some(OnFault::Expr(e.clone()));
    }
    let ReturnType::Type(_, ty) = &sig.output else {
        return None;
    };
    let Type::Path(p) = &**ty else {
        return None;
    };
    match p.path.segments.last()?.ident.to_string().as_str() {
        "Result" => Some(OnFault::Err),
        "Option" => Some(OnFault::None),
        _ => None,
    }
}

/// Whether a macro call is the standard `asm!` (`asm!`, `core::arch::asm!`, `std::arch::asm!`).
fn is_std_asm(mac: &Macro) -> bool {
    let segs: Vec<String> = mac
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    matches!(
        segs.as_slice(),
        ["asm"] | ["core", "arch", "asm"] | ["std", "arch", "asm"]
    )
}

/// Whether an `asm!` call has a mark in one of its literal templates.
fn has_mark(mac: &Macro) -> bool {
    syn::parse2::<AsmArgs>(mac.tokens.clone())
        .map(|a| {
            a.templates.iter().any(|t| match t {
                // A malformed mark counts, so that its error is reported.
                crate::args::Template::Lit(l) => crate::template::scan(l)
                    .map(|s| s.targets().next().is_some())
                    .unwrap_or(true),
                crate::args::Template::Other(_) => false,
            })
        })
        .unwrap_or(false)
}

/// Rewrites the marked `asm!` calls of a function body.
struct Rewriter<'a> {
    krate: &'a TokenStream,
    on_fault: Option<OnFault>,
    fn_sig_span: Span,
    marked: usize,
    errors: Vec<syn::Error>,
}

impl Rewriter<'_> {
    /// The replacement of a marked `asm!` call, or `None` to leave it alone.
    fn rewrite(&mut self, mac: &Macro) -> Option<Expr> {
        if !is_std_asm(mac) || !has_mark(mac) {
            return None;
        }
        self.marked += 1;
        let result = syn::parse2::<AsmArgs>(mac.tokens.clone())
            .and_then(|args| expand(self.krate, &args, mac.span()))
            .and_then(|exp| self.wrap(exp.tokens, exp.mode, mac));
        match result {
            Ok(tokens) => Some(Expr::Verbatim(tokens)),
            Err(e) => {
                self.errors.push(e);
                Some(Expr::Verbatim(quote!(())))
            }
        }
    }

    /// Turn a record-mode `Result<(), Fault>` into the function's fault return.
    fn wrap(&self, tokens: TokenStream, mode: Mode, mac: &Macro) -> syn::Result<TokenStream> {
        if mode != Mode::Record {
            return Ok(tokens);
        }
        let span = mac.tokens.span();
        let ret = match &self.on_fault {
            Some(OnFault::Err) => {
                let krate = &self.krate;
                quote_spanned!(span=> ::core::result::Result::Err(#krate::Fault::into_error(__extable_fault)))
            }
            Some(OnFault::None) => quote!(::core::option::Option::None),
            Some(OnFault::Expr(e)) => e.to_token_stream(),
            None => {
                let mut e = syn::Error::new(
                    span,
                    "`[ex]` mark in a function that cannot return the fault: return `Result<_, E>` with `E: From<extable_runtime::Fault>` or `Option<_>`, or give `#[extable(on_fault = EXPR)]`",
                );
                e.combine(syn::Error::new(
                    self.fn_sig_span,
                    "this return type cannot carry the fault",
                ));
                return Err(e);
            }
        };
        Ok(quote!(
            match #tokens {
                ::core::result::Result::Ok(()) => {}
                ::core::result::Result::Err(__extable_fault) => {
                    #[allow(unused_variables)]
                    let __extable_fault = __extable_fault;
                    return #ret;
                }
            }
        ))
    }
}

/// Finds marked `asm!` calls where a fault could not return from the function.
struct NestedFinder<'a> {
    errors: &'a mut Vec<syn::Error>,
}

impl<'ast> Visit<'ast> for NestedFinder<'_> {
    fn visit_macro(&mut self, mac: &'ast Macro) {
        if is_std_asm(mac) && has_mark(mac) {
            self.errors.push(syn::Error::new(
                mac.tokens.span(),
                "`[ex]` mark inside a closure, async block or nested item of an `#[extable]` function: the fault cannot return from the function there; use `extable_runtime::asm!` in it instead",
            ));
        }
    }
}

/// The replacement wrapped in a block that keeps the call's attributes (`#[cfg]` above all).
fn with_attrs(attrs: &[syn::Attribute], new: Expr) -> Expr {
    if attrs.is_empty() {
        return new;
    }
    Expr::Verbatim(quote!(#(#attrs)* { #new }))
}

impl VisitMut for Rewriter<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Macro(m) => {
                if let Some(new) = self.rewrite(&m.mac) {
                    *expr = with_attrs(&m.attrs, new);
                }
            }
            Expr::Closure(_) | Expr::Async(_) => {
                NestedFinder {
                    errors: &mut self.errors,
                }
                .visit_expr(expr);
            }
            _ => syn::visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        match stmt {
            Stmt::Macro(m) => {
                if let Some(new) = self.rewrite(&m.mac) {
                    *stmt = Stmt::Expr(with_attrs(&m.attrs, new), Some(Default::default()));
                }
            }
            Stmt::Item(item) => {
                NestedFinder {
                    errors: &mut self.errors,
                }
                .visit_item(item);
            }
            _ => syn::visit_mut::visit_stmt_mut(self, stmt),
        }
    }
}

/// `#[extable]`: rewrite the function's marked `asm!` calls.
pub fn extable(args: ExtableArgs, mut func: ItemFn) -> syn::Result<TokenStream> {
    let original = func.clone();
    let on_fault = on_fault(&args, &func.sig);
    let mut rw = Rewriter {
        krate: &args.krate,
        on_fault,
        fn_sig_span: match &func.sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => func.sig.ident.span(),
        },
        marked: 0,
        errors: Vec::new(),
    };
    rw.visit_block_mut(&mut func.block);
    let Rewriter {
        marked, mut errors, ..
    } = rw;
    if marked == 0 && errors.is_empty() {
        errors.push(syn::Error::new(
            func.sig.ident.span(),
            "`#[extable]` function without an `[ex]`-marked instruction in an `asm!` block",
        ));
    }
    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(func.into_token_stream()),
        Some(mut first) => {
            first.extend(errors);
            // Keep the function (unrewritten) so that its callers do not add errors.
            let original = original.into_token_stream();
            let errors = first.into_compile_error();
            Ok(quote!(#original #errors))
        }
    }
}

/// `#[handler]`: check that the function has the `Handler` signature.
pub fn handler(args: HandlerArgs, func: ItemFn) -> syn::Result<TokenStream> {
    let sig = &func.sig;
    let fail = |span: Span, msg: &str| Err(syn::Error::new(span, msg));
    if let Some(u) = &sig.unsafety {
        return fail(
            u.span(),
            "a handler must be a safe `fn`: `Handler` is a safe function pointer type",
        );
    }
    if let Some(a) = &sig.asyncness {
        return fail(
            a.span(),
            "a handler cannot be `async`: it runs in the fault context",
        );
    }
    if let Some(abi) = &sig.abi {
        return fail(
            abi.span(),
            "a handler uses the Rust ABI: remove the `extern`",
        );
    }
    if let Some(v) = &sig.variadic {
        return fail(v.span(), "a handler cannot be variadic");
    }
    for p in &sig.generics.params {
        if let syn::GenericParam::Type(t) = p {
            return fail(
                t.span(),
                "a handler cannot be generic over types (const generics are fine, as in `efault::<ERR, ZERO>`)",
            );
        }
    }
    if sig.inputs.len() != 3 {
        return fail(
            sig.inputs.span().join(sig.paren_token.span.join()).unwrap_or(sig.ident.span()),
            &format!(
                "a handler takes 3 parameters `(&ExceptionTableEntry, &mut dyn ExRegs, &Trap)`, this one takes {}",
                sig.inputs.len()
            ),
        );
    }
    if let Some(receiver) = sig.receiver() {
        return fail(
            receiver.span(),
            "a handler is a free function, not a method",
        );
    }
    let returns_bool = matches!(&sig.output, ReturnType::Type(_, t) if matches!(&**t, Type::Path(p) if p.path.is_ident("bool")));
    if !returns_bool {
        return fail(
            sig.output
                .span()
                .join(sig.ident.span())
                .unwrap_or(sig.ident.span()),
            "a handler returns `bool`: whether it fixed the fault",
        );
    }
    let krate = &args.krate;
    let name = &sig.ident;
    let has_const_generics = !sig.generics.params.is_empty()
        && sig
            .generics
            .params
            .iter()
            .any(|p| matches!(p, syn::GenericParam::Const(_)));
    // The type check proper: parameter types are compared by the compiler, with the error
    // on the signature.
    let check = if has_const_generics {
        TokenStream::new()
    } else {
        let span = sig.inputs.span();
        quote_spanned!(span=> const _: #krate::Handler = #name;)
    };
    Ok(quote!(#func #check))
}
