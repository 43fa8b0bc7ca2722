// The registers a built-in handler writes must be declared by the block: the macro adds a
// clobber, or refuses a block that takes the register as an input only or names one that
// cannot be an operand.
fn main() {
    let x = 1usize;
    unsafe {
        // `fault` writes rax, which this block reads only.
        extable_runtime::asm!("[ex => 3f] mov {t}, qword ptr [rax]", "3:", t = out(reg) _, in("rax") x, handler = fault);
        // `efault::<2, 0>` writes rdx, an input only here.
        extable_runtime::asm!("[ex => 3f] mov {t}, qword ptr [rdx]", "3:", t = out(reg) _, in("rdx") x, handler = efault::<2, 0>);
        // rbx (3) cannot be an asm operand.
        extable_runtime::asm!("[ex => 3f] mov {t}, qword ptr [{p}]", "3:", t = out(reg) _, p = in(reg) x, handler = efault::<3, { extable_runtime::NO_REG }>);
        // A register number the macro cannot read.
        extable_runtime::asm!("[ex => 3f] mov {t}, qword ptr [{p}]", "3:", t = out(reg) _, p = in(reg) x, handler = extable_runtime::handlers::efault::<{ 1 + 1 }, 0>);
    }
}
