//! Parsing the arguments of `asm!`, plus the wrapper's own `handler = PATH` argument.
//!
//! Everything is kept as parsed syntax with its original spans, so the re-emitted `asm!`
//! reports the user's mistakes where the user made them.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::{Expr, ExprPath, Ident, LitStr, Token};

/// One template piece: a string literal (scanned for marks) or a macro call such as
/// `concat!(...)` (passed through unscanned).
pub enum Template {
    Lit(LitStr),
    Other(syn::Macro),
}

/// The direction keyword of a register operand.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    In,
    Out,
    LateOut,
    InOut,
    InLateOut,
}

impl Dir {
    fn from_ident(ident: &Ident) -> Option<Dir> {
        Some(match ident.to_string().as_str() {
            "in" => Dir::In,
            "out" => Dir::Out,
            "lateout" => Dir::LateOut,
            "inout" => Dir::InOut,
            "inlateout" => Dir::InLateOut,
            _ => return None,
        })
    }
}

/// Where a register operand lives: a class (`reg`) or an explicit register (`"rax"`).
pub enum RegSpec {
    Class(Ident),
    Explicit(LitStr),
}

/// The body of an operand, after the optional `name =`.
pub enum OperandBody {
    Reg {
        dir: Dir,
        dir_ident: Ident,
        spec: RegSpec,
        /// The input expression, or the output place (`_` is kept as an expression).
        expr: Box<Expr>,
        /// For `inout(...) a => b`: the output place.
        out: Option<Box<Expr>>,
    },
    Const(Expr),
    Sym(ExprPath),
    Label(syn::Block, Span),
}

/// An operand of `asm!`.
pub struct Operand {
    pub name: Option<Ident>,
    pub body: OperandBody,
}

impl Operand {
    /// Whether the operand is an output (which rules out a `label` fixup on stable Rust).
    pub fn is_output(&self) -> bool {
        matches!(&self.body, OperandBody::Reg { dir, .. } if *dir != Dir::In)
    }

    /// The explicit register it names, if any.
    pub fn explicit_reg(&self) -> Option<&LitStr> {
        match &self.body {
            OperandBody::Reg {
                spec: RegSpec::Explicit(lit),
                ..
            } => Some(lit),
            _ => None,
        }
    }

    /// Whether this is the label operand named `fixup`.
    pub fn is_fixup_label(&self) -> bool {
        matches!(self.body, OperandBody::Label(..))
            && self.name.as_ref().is_some_and(|n| n == "fixup")
    }
}

impl ToTokens for Operand {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        if let Some(name) = &self.name {
            tokens.extend(quote!(#name =));
        }
        match &self.body {
            OperandBody::Reg {
                dir_ident,
                spec,
                expr,
                out,
                ..
            } => {
                let spec = match spec {
                    RegSpec::Class(c) => c.to_token_stream(),
                    RegSpec::Explicit(l) => l.to_token_stream(),
                };
                tokens.extend(quote!(#dir_ident(#spec) #expr));
                if let Some(out) = out {
                    tokens.extend(quote!(=> #out));
                }
            }
            OperandBody::Const(e) => tokens.extend(quote!(const #e)),
            OperandBody::Sym(p) => tokens.extend(quote!(sym #p)),
            OperandBody::Label(b, span) => {
                let kw = Ident::new("label", *span);
                tokens.extend(quote!(#kw #b));
            }
        }
    }
}

/// `options(...)` with its option names.
pub struct Options {
    pub tokens: TokenStream,
    pub names: Vec<Ident>,
}

/// The wrapper's `handler = PATH`.
pub struct HandlerArg {
    pub key: Ident,
    pub path: ExprPath,
}

/// Everything between the parentheses of an `asm!` call.
pub struct AsmArgs {
    pub templates: Vec<Template>,
    pub operands: Vec<Operand>,
    pub options: Vec<Options>,
    pub clobber_abis: Vec<TokenStream>,
    pub handler: Option<HandlerArg>,
}

impl AsmArgs {
    /// Every option name given, across all `options(...)` groups.
    pub fn option_names(&self) -> impl Iterator<Item = &Ident> {
        self.options.iter().flat_map(|o| o.names.iter())
    }

    /// Whether `options(att_syntax)` is given.
    pub fn att_syntax(&self) -> bool {
        self.option_names().any(|n| n == "att_syntax")
    }

    /// The label operand named `fixup`, if any.
    pub fn fixup_label(&self) -> Option<&Operand> {
        self.operands.iter().find(|o| o.is_fixup_label())
    }
}

/// Whether the next tokens are `IDENT =` (a named argument) rather than `IDENT ==`/`=>`.
fn peek_named(input: ParseStream) -> bool {
    let fork = input.fork();
    fork.call(Ident::parse_any_ident).is_ok()
        && fork.peek(Token![=])
        && !fork.peek(Token![==])
        && !fork.peek(Token![=>])
}

/// Parse helpers for identifiers that may be keywords (`in`, `const`, `sym`).
trait ParseAnyIdent {
    fn parse_any_ident(input: ParseStream) -> syn::Result<Ident>;
}

impl ParseAnyIdent for Ident {
    fn parse_any_ident(input: ParseStream) -> syn::Result<Ident> {
        use syn::ext::IdentExt;
        Ident::parse_any(input)
    }
}

fn parse_out_place(input: ParseStream) -> syn::Result<Expr> {
    if input.peek(Token![_]) {
        let u: Token![_] = input.parse()?;
        Ok(Expr::Verbatim(u.to_token_stream()))
    } else {
        input.parse()
    }
}

fn parse_operand_body(input: ParseStream) -> syn::Result<OperandBody> {
    if input.peek(Token![const]) {
        input.parse::<Token![const]>()?;
        return Ok(OperandBody::Const(input.parse()?));
    }
    let kw = Ident::parse_any_ident(input)?;
    if kw == "sym" {
        return Ok(OperandBody::Sym(input.parse()?));
    }
    if kw == "label" {
        return Ok(OperandBody::Label(input.parse()?, kw.span()));
    }
    let Some(dir) = Dir::from_ident(&kw) else {
        return Err(syn::Error::new(
            kw.span(),
            format!("expected an asm! operand (in, out, lateout, inout, inlateout, const, sym, label), found `{kw}`"),
        ));
    };
    let content;
    syn::parenthesized!(content in input);
    let spec = if content.peek(LitStr) {
        RegSpec::Explicit(content.parse()?)
    } else {
        RegSpec::Class(Ident::parse_any_ident(&content)?)
    };
    let expr = Box::new(if dir == Dir::In {
        input.parse()?
    } else {
        parse_out_place(input)?
    });
    let out = if matches!(dir, Dir::InOut | Dir::InLateOut) && input.peek(Token![=>]) {
        input.parse::<Token![=>]>()?;
        Some(Box::new(parse_out_place(input)?))
    } else {
        None
    };
    Ok(OperandBody::Reg {
        dir,
        dir_ident: kw,
        spec,
        expr,
        out,
    })
}

/// Whether the next token starts an operand body (rather than a handler path).
fn peek_operand_keyword(input: ParseStream) -> bool {
    if input.peek(Token![const]) {
        return true;
    }
    let fork = input.fork();
    match Ident::parse_any_ident(&fork) {
        Ok(kw) => {
            kw == "sym"
                || kw == "label"
                || Dir::from_ident(&kw).is_some() && fork.peek(syn::token::Paren)
        }
        Err(_) => false,
    }
}

impl Parse for AsmArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = AsmArgs {
            templates: Vec::new(),
            operands: Vec::new(),
            options: Vec::new(),
            clobber_abis: Vec::new(),
            handler: None,
        };
        // Templates first.
        loop {
            if input.is_empty() {
                break;
            }
            if input.peek(LitStr) {
                args.templates.push(Template::Lit(input.parse()?));
            } else if input.peek(Ident) && input.peek2(Token![!]) {
                args.templates.push(Template::Other(input.parse()?));
            } else {
                break;
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        if args.templates.is_empty() {
            return Err(input.error("expected a template string"));
        }
        // Then operands, options and clobber_abi, and our `handler = PATH`.
        while !input.is_empty() {
            parse_one(input, &mut args)?;
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// Parse one argument after the templates.
fn parse_one(input: ParseStream, args: &mut AsmArgs) -> syn::Result<()> {
    if input.peek(Ident) && input.peek2(syn::token::Paren) {
        let fork = input.fork();
        let kw: Ident = fork.parse()?;
        if kw == "options" || kw == "clobber_abi" {
            let kw: Ident = input.parse()?;
            let content;
            let paren = syn::parenthesized!(content in input);
            let inner: TokenStream = content.parse()?;
            let mut group = TokenStream::new();
            paren.surround(&mut group, |t| t.extend(inner.clone()));
            let tokens = quote!(#kw #group);
            if kw == "options" {
                let names = syn::parse::Parser::parse2(
                    syn::punctuated::Punctuated::<Ident, Token![,]>::parse_terminated,
                    inner,
                )?
                .into_iter()
                .collect();
                args.options.push(Options { tokens, names });
            } else {
                args.clobber_abis.push(tokens);
            }
            return Ok(());
        }
    }
    if peek_named(input) {
        let name = Ident::parse_any_ident(input)?;
        input.parse::<Token![=]>()?;
        if name == "handler" && !peek_operand_keyword(input) {
            if let Some(prev) = &args.handler {
                let mut e = syn::Error::new(name.span(), "`handler` given twice");
                e.combine(syn::Error::new(prev.key.span(), "first given here"));
                return Err(e);
            }
            let path: ExprPath = input.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected a handler: `default`, `fault`, `uaccess` or a path to a function of type `extable_runtime::Handler`",
                )
            })?;
            args.handler = Some(HandlerArg { key: name, path });
            return Ok(());
        }
        let body = parse_operand_body(input)?;
        args.operands.push(Operand {
            name: Some(name),
            body,
        });
        return Ok(());
    }
    let body = parse_operand_body(input)?;
    args.operands.push(Operand { name: None, body });
    Ok(())
}
