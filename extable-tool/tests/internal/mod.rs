//! Tests of the internals, compiled into the library's unit tests (`cargo test -p
//! extable-tool --lib`): the fast path of `check` and `sort` against the simple one, and the
//! symbol lookups that keep only what the table's addresses need. They reach private
//! modules, which the integration tests in `tests/` cannot.

// The synthetic ELF files of the integration tests.
#[path = "../common/elfgen.rs"]
mod elfgen;
// Inside the crate `Layout` is exhaustive: the arms for layouts added later are unreachable.
#[allow(unreachable_patterns)]
#[path = "../common/synth.rs"]
mod synth;

mod common {
    pub(super) use super::{elfgen, synth};
}

mod fast_path;
mod mapped;
mod read_ahead;
mod section_names;
mod symbol_lookups;
