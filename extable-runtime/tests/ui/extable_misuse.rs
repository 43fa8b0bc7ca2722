// #[extable] without a mark, and a mark where a fault cannot return from the function.
use extable_runtime::extable;

#[extable]
fn no_marks() -> Result<(), extable_runtime::Fault> {
    Ok(())
}

#[extable]
fn in_a_closure(p: usize) -> Result<u64, extable_runtime::Fault> {
    let f = || {
        let v: u64;
        unsafe { core::arch::asm!("[ex] mov {v}, qword ptr [{p}]", p = in(reg) p, v = out(reg) v) };
        v
    };
    Ok(f())
}

fn main() {
    let _ = no_marks();
    let _ = in_a_closure(0);
}
