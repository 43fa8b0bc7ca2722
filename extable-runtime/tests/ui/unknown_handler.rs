// A handler that does not exist, and one of the wrong type.
fn not_a_handler(_x: u32) -> bool {
    true
}

fn main() {
    unsafe {
        let _ = extable_runtime::asm!("[ex] mov eax, [rdi]", out("eax") _, in("rdi") 0usize, handler = no_such_handler);
        let _ = extable_runtime::asm!("[ex] mov eax, [rdi]", out("eax") _, in("rdi") 0usize, handler = not_a_handler);
    }
}
