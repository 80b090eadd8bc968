//! Subcommands, one module each.

pub mod matching;
