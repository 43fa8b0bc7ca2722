//! The scenarios only x86_64 has.

use crate::scenarios::Scenario;

/// x86_64's scenarios, run after the common ones.
pub static SCENARIOS: &[Scenario] = &[];
