//! The registers a built-in handler writes, which the block must declare.
//!
//! `fault` writes the return register (rax, r0, x0); `efault::<ERR, ZERO>` writes register
//! `ERR` and, unless it is `NO_REG`, register `ZERO`. A register the block does not declare
//! could hold a value the compiler keeps live across the block, so the macro adds a clobber
//! (`out("REG") _`) for each, or rejects the block when it names the register as an input
//! only or when the register cannot be an operand at all.

use syn::{Expr, ExprPath, GenericArgument, Lit, PathArguments, Type};

use crate::args::{AsmArgs, Dir, OperandBody, RegSpec};

/// `NO_REG` of the runtime: "no register".
const NO_REG: u8 = 0xff;

/// The number of the return register (rax, r0, x0) on every supported architecture.
const RETURN_REG: u8 = 0;

/// A register a handler writes, by the runtime's numbering (`ExRegs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The return register of the architecture.
    Return,
    /// Register `n`.
    Number(u8),
}

/// What a block must do about one written register on one architecture.
pub enum Need {
    /// Add `out(NAME) _`.
    Clobber(&'static str),
    /// The block declares it as an output already.
    Declared,
    /// A compile error with this message.
    Error(String),
}

/// One register: its name and every name an operand could give it.
struct Reg {
    aliases: &'static [&'static str],
    /// Whether `asm!` accepts it as an operand on this architecture.
    operand: bool,
}

macro_rules! r {
    ($($a:literal),*) => { Reg { aliases: &[$($a),*], operand: true } };
    (reserved $($a:literal),*) => { Reg { aliases: &[$($a),*], operand: false } };
}

/// x86_64 by instruction encoding (0 = rax, ..., 15 = r15).
const X86_64: &[Reg] = &[
    r!("rax", "eax", "ax", "al", "ah"),
    r!("rcx", "ecx", "cx", "cl", "ch"),
    r!("rdx", "edx", "dx", "dl", "dh"),
    r!(reserved "rbx", "ebx", "bx", "bl", "bh"),
    r!(reserved "rsp", "esp", "sp", "spl"),
    r!(reserved "rbp", "ebp", "bp", "bpl"),
    r!("rsi", "esi", "si", "sil"),
    r!("rdi", "edi", "di", "dil"),
    r!("r8", "r8d", "r8w", "r8b"),
    r!("r9", "r9d", "r9w", "r9b"),
    r!("r10", "r10d", "r10w", "r10b"),
    r!("r11", "r11d", "r11w", "r11b"),
    r!("r12", "r12d", "r12w", "r12b"),
    r!("r13", "r13d", "r13w", "r13b"),
    r!("r14", "r14d", "r14w", "r14b"),
    r!("r15", "r15d", "r15w", "r15b"),
];

/// ARM r0..r15; r6 (LLVM's base pointer), r7 and r11 (frame pointers), sp and pc are no
/// operands.
const ARM: &[Reg] = &[
    r!("r0", "a1"),
    r!("r1", "a2"),
    r!("r2", "a3"),
    r!("r3", "a4"),
    r!("r4", "v1"),
    r!("r5", "v2"),
    r!(reserved "r6", "v3"),
    r!(reserved "r7", "v4"),
    r!("r8", "v5"),
    r!("r9", "v6", "rfp"),
    r!("r10", "v7", "sl"),
    r!(reserved "r11", "v8", "fp"),
    r!("r12", "ip"),
    r!(reserved "r13", "sp"),
    r!("r14", "lr"),
    r!(reserved "r15", "pc"),
];

/// AArch64 x0..x30; x18 (platform register), x19 (LLVM's base pointer) and x29 (frame
/// pointer) are no operands.
const AARCH64: &[Reg] = &[
    r!("x0", "w0"),
    r!("x1", "w1"),
    r!("x2", "w2"),
    r!("x3", "w3"),
    r!("x4", "w4"),
    r!("x5", "w5"),
    r!("x6", "w6"),
    r!("x7", "w7"),
    r!("x8", "w8"),
    r!("x9", "w9"),
    r!("x10", "w10"),
    r!("x11", "w11"),
    r!("x12", "w12"),
    r!("x13", "w13"),
    r!("x14", "w14"),
    r!("x15", "w15"),
    r!("x16", "w16"),
    r!("x17", "w17"),
    r!(reserved "x18", "w18"),
    r!(reserved "x19", "w19"),
    r!("x20", "w20"),
    r!("x21", "w21"),
    r!("x22", "w22"),
    r!("x23", "w23"),
    r!("x24", "w24"),
    r!("x25", "w25"),
    r!("x26", "w26"),
    r!("x27", "w27"),
    r!("x28", "w28"),
    r!(reserved "x29", "w29", "fp"),
    r!("x30", "w30", "lr"),
];

fn regs_of(arch: &str) -> &'static [Reg] {
    match arch {
        "x86_64" => X86_64,
        "arm" => ARM,
        _ => AARCH64,
    }
}

/// The registers the block's handler writes: `fault`'s return register, `efault`'s two.
pub fn written(args: &AsmArgs) -> syn::Result<Vec<Written>> {
    let Some(handler) = &args.handler else {
        return Ok(Vec::new());
    };
    let path = &handler.path.path;
    let Some(last) = path.segments.last() else {
        return Ok(Vec::new());
    };
    if last.ident == "fault" && path.segments.len() == 1 {
        return Ok(vec![Written::Return]);
    }
    if last.ident != "efault" || !is_runtime_efault(&handler.path) {
        return Ok(Vec::new());
    }
    let PathArguments::AngleBracketed(generics) = &last.arguments else {
        return Err(syn::Error::new_spanned(
            last,
            "`efault` needs its registers: `efault::<ERR, ZERO>`",
        ));
    };
    let numbers = generics
        .args
        .iter()
        .map(register_number)
        .collect::<syn::Result<Vec<u8>>>()?;
    let mut out: Vec<Written> = numbers
        .into_iter()
        .filter(|&n| n != NO_REG)
        .map(Written::Number)
        .collect();
    out.dedup();
    Ok(out)
}

/// Whether `path` names the runtime's `efault` (`efault`, `handlers::efault`,
/// `extable_runtime::handlers::efault`, ...).
fn is_runtime_efault(path: &ExprPath) -> bool {
    let n = path.path.segments.len();
    n == 1 || path.path.segments[n - 2].ident == "handlers"
}

/// A register number given as an integer literal, or `NO_REG` (as a path or in a block).
fn register_number(arg: &GenericArgument) -> syn::Result<u8> {
    let expr = match arg {
        GenericArgument::Const(e) => e,
        GenericArgument::Type(Type::Path(p)) if ends_in_no_reg(&p.path) => return Ok(NO_REG),
        other => return Err(not_a_register(other)),
    };
    let inner = match expr {
        Expr::Block(b) if b.block.stmts.len() == 1 => match &b.block.stmts[0] {
            syn::Stmt::Expr(e, None) => e,
            _ => return Err(not_a_register(arg)),
        },
        e => e,
    };
    match inner {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => i.base10_parse::<u8>(),
            _ => Err(not_a_register(arg)),
        },
        Expr::Path(p) if ends_in_no_reg(&p.path) => Ok(NO_REG),
        _ => Err(not_a_register(arg)),
    }
}

fn ends_in_no_reg(path: &syn::Path) -> bool {
    path.segments.last().is_some_and(|s| s.ident == "NO_REG")
}

fn not_a_register(arg: &impl quote::ToTokens) -> syn::Error {
    syn::Error::new_spanned(
        arg,
        "`efault` registers must be integer literals or `NO_REG`, so that the macro can declare the registers the handler writes",
    )
}

/// What the block needs for register `w` on `arch`.
pub fn need(args: &AsmArgs, arch: &str, w: Written, handler: &str) -> Need {
    let n = match w {
        Written::Return => RETURN_REG,
        Written::Number(n) => n,
    };
    let Some(reg) = regs_of(arch).get(usize::from(n)) else {
        return Need::Error(format!(
            "the `{handler}` handler writes register {n}, which {arch} does not have"
        ));
    };
    let name = reg.aliases[0];
    for op in &args.operands {
        let OperandBody::Reg {
            dir,
            spec: RegSpec::Explicit(lit),
            ..
        } = &op.body
        else {
            continue;
        };
        let value = lit.value();
        if !reg.aliases.iter().any(|a| a.eq_ignore_ascii_case(&value)) {
            continue;
        }
        return if *dir == Dir::In {
            Need::Error(format!(
                "the `{handler}` handler writes {name}, which this block takes as an input only: make it `inout(\"{value}\") ...` (or drop it and let the macro declare it)"
            ))
        } else {
            Need::Declared
        };
    }
    if !reg.operand {
        return Need::Error(format!(
            "the `{handler}` handler writes {name}, which cannot be an `asm!` operand on {arch} (so the compiler cannot be told): pick another register"
        ));
    }
    Need::Clobber(name)
}

/// Every alias of the registers `written` names on `arch` (they cannot carry the record).
pub fn aliases(arch: &str, written: &[Written]) -> Vec<String> {
    written
        .iter()
        .filter_map(|w| {
            let n = match w {
                Written::Return => RETURN_REG,
                Written::Number(n) => *n,
            };
            regs_of(arch).get(usize::from(n))
        })
        .flat_map(|r| r.aliases.iter().map(|a| a.to_string()))
        .collect()
}
