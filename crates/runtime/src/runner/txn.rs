//! The producer's transaction under exactly-once (docs/design.md §2.5): its states exclude each
//! other, so they are one enum, as Arroyo's Kafka sink keeps its exactly-once state inside one
//! variant of its consistency mode.

use crate::client_error::ClientError;

/// Where the producer's transaction stands.
#[derive(Debug, Default)]
pub(crate) enum Txn {
    /// Effectively-once: no transactions.
    #[default]
    Off,
    /// Exactly-once, no transaction open: the next write begins one.
    Idle,
    /// A transaction is open: everything written since it began commits or aborts together.
    Open,
    /// A write inside the open transaction failed: it can only be aborted; writes until then
    /// are dropped (their input is processed again after the abort).
    Doomed(ClientError),
}

impl Txn {
    /// The state a producer starts in.
    pub(crate) fn new(exactly_once: bool) -> Self {
        if exactly_once { Txn::Idle } else { Txn::Off }
    }

    /// Whether writes go in transactions.
    pub(crate) fn enabled(&self) -> bool {
        !matches!(self, Txn::Off)
    }

    /// Whether a transaction must be committed or aborted before the next one.
    pub(crate) fn pending(&self) -> bool {
        matches!(self, Txn::Open | Txn::Doomed(_))
    }

    /// The failure that doomed the open transaction, taken out: the transaction is over.
    pub(crate) fn take_doom(&mut self) -> Option<ClientError> {
        match std::mem::replace(self, Txn::Idle) {
            Txn::Doomed(e) => Some(e),
            other => {
                *self = other;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
