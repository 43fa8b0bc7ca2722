//! Proc-macros for `__ex_table` entries (see issue 3).
