// #[handler] checks the Handler signature.
use extable_runtime::entry::ExceptionTableEntry;
use extable_runtime::{handler, Trap};

#[handler]
fn two_params(_e: &ExceptionTableEntry, _r: &mut dyn extable_runtime::ExRegs) -> bool {
    true
}

#[handler]
fn no_verdict(_e: &ExceptionTableEntry, _r: &mut dyn extable_runtime::ExRegs, _t: &Trap) {}

#[handler]
unsafe fn unsafe_one(_e: &ExceptionTableEntry, _r: &mut dyn extable_runtime::ExRegs, _t: &Trap) -> bool {
    true
}

#[handler]
fn wrong_types(_e: &ExceptionTableEntry, _r: &mut u64, _t: &Trap) -> bool {
    true
}

fn main() {}
