// A mark in an #[extable] function whose return type cannot carry the fault.
use extable_runtime::extable;

#[extable]
fn read(p: usize) -> u64 {
    let v: u64;
    unsafe { core::arch::asm!("[ex] mov {v}, qword ptr [{p}]", p = in(reg) p, v = out(reg) v) };
    v
}

fn main() {
    let _ = read(0);
}
