// asm goto with outputs is unstable: a `fixup` label block cannot have outputs.
fn main() {
    let v: u64;
    unsafe {
        extable_runtime::asm!(
            "[ex] mov {v}, qword ptr [{p}]",
            p = in(reg) 0usize,
            v = out(reg) v,
            fixup = label { return },
        );
    }
    let _ = v;
}
