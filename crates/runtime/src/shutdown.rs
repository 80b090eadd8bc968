//! A stop flag shared by a worker's threads, set by a signal or by the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Cloneable; every clone sees the same flag.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything holding a clone to stop.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once stop was asked for.
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
