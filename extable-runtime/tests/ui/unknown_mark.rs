// A misspelt mark names itself and the mark it should be, in `asm!` and in `#[extable]`.
use extable_runtime::{extable, Fault};

#[extable]
fn probe(addr: usize) -> Result<u32, Fault> {
    let v: u32;
    unsafe { core::arch::asm!("[EX] mov {v:e}, [{a}]", a = in(reg) addr, v = out(reg) v) };
    Ok(v)
}

fn main() {
    unsafe {
        let _ = extable_runtime::asm!("[exx] mov eax, [rdi]", out("eax") _, in("rdi") 0usize);
        let _ = extable_runtime::asm!("[ex_table => 3f] mov eax, [rdi]", "3:", out("eax") _, in("rdi") 0usize);
    }
    let _ = probe(0);
}
