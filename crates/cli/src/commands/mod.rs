//! Subcommands, one module each.

#[cfg(feature = "embedded-broker")]
pub mod broker;
#[cfg(feature = "embedded-broker")]
pub mod demo;
#[cfg(feature = "embedded-broker")]
pub mod demo_serve;
pub mod gateway;
pub mod kafka;
pub mod keys;
pub mod matching;
pub mod produce;
pub mod query;
pub mod replay;
pub mod run;
pub mod tail;
pub mod topics;
