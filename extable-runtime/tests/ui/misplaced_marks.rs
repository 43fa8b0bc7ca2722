// Marks that do not stand before an instruction, and malformed marks.
fn main() {
    unsafe {
        let _ = extable_runtime::asm!("[ex]", "nop");
        let _ = extable_runtime::asm!("[ex] .byte 0x90");
        let _ = extable_runtime::asm!("2:", "[ex] 3: mov eax, [rdi]", out("eax") _, in("rdi") 0usize);
        let _ = extable_runtime::asm!("mov eax, [rdi] [ex]", out("eax") _, in("rdi") 0usize);
        let _ = extable_runtime::asm!("[ex => somewhere] mov eax, [rdi]", out("eax") _, in("rdi") 0usize);
        let _ = extable_runtime::asm!("nop");
    }
}
