//! The README's example: a debugger-style probe that returns an error instead of crashing,
//! run in Linux user space through the hosted backend.
//!
//! Run: `cargo run -p extable-runtime --example probe`

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod probe {
    use extable_runtime::{extable, Fault};

    /// A fault at a marked instruction becomes the function's `Err`.
    #[extable]
    pub fn probe(addr: usize) -> Result<usize, Fault> {
        let value: usize;
        // SAFETY: the only access is marked; a fault there returns from `probe`.
        unsafe {
            core::arch::asm!("[ex] mov {v}, qword ptr [{a}]", a = in(reg) addr, v = out(reg) value);
        }
        Ok(value)
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn main() {
    extable_runtime::hosted::install().expect("install the SIGSEGV handler");
    let word = 0x1234usize;
    let good = probe::probe(&word as *const usize as usize);
    let null = probe::probe(0);
    let wild = probe::probe(0x880);
    println!("probe(&word) = {good:x?}");
    println!("probe(NULL)  = {null:?}");
    println!("probe(0x880) = {wild:?}");
    assert_eq!(good.ok(), Some(0x1234));
    assert!(null.is_err() && wild.is_err());
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn main() {}
