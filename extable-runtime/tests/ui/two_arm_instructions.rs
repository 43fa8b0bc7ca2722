// Two instructions after one mark, in A32, T32 and A64 syntax: `#` starts an immediate there,
// not a comment, so the second load would be unmarked.
fn main() {
    unsafe {
        let _ = extable_runtime::asm!("[ex] ldr {t}, [{p}, #0]; ldr {u}, [{p}, #8]", p = in(reg) 0usize, t = out(reg) _, u = out(reg) _);
        let _ = extable_runtime::asm!("[ex] ldr.w {t}, [{p}, #0]; ldr.w {u}, [{p}, #4]", p = in(reg) 0usize, t = out(reg) _, u = out(reg) _);
        let _ = extable_runtime::asm!("[ex] ldr {t:x}, [{p}, #0]; ldr {u:x}, [{p}, #8]", p = in(reg) 0usize, t = out(reg) _, u = out(reg) _);
    }
}
