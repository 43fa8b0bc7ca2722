// A recorded fault writes memory and resumes after the block.
fn main() {
    unsafe {
        let _ = extable_runtime::asm!("[ex] mov eax, [rdi]", out("eax") _, in("rdi") 0usize, options(nomem));
        let _ = extable_runtime::asm!("[ex] mov eax, [rdi]", out("eax") _, in("rdi") 0usize, options(readonly));
        let _ = extable_runtime::asm!("[ex] mov eax, [rdi]", in("rdi") 0usize, options(noreturn));
    }
}
