//! Trying a client call again after a transient error (a broker away, a coordinator moving, a
//! metadata fetch timing out): exponential backoff, bounded in tries, each retry counted
//! (`tradestream_client_retries_total`). A fatal error, or the last try's error, is returned.
//!
//! One broker of several dying must not stop a worker: the calls the loop makes outside the
//! steady state (the synchronous commit at a hand-over or a stop, the committed-offset lookup
//! on assignment) go through [`Retry::run`].

use std::time::Duration;

use crate::client_error::ClientError;
use crate::io::Clock;

/// How often and how patiently to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all (at least one).
    pub tries: u32,
    /// The wait before the second try; it doubles after each try.
    pub first: Duration,
    /// The longest wait between two tries.
    pub max: Duration,
}

impl Default for Retry {
    /// Eight tries over about 20 s: longer than a leader election or a coordinator move.
    fn default() -> Self {
        Retry {
            tries: 8,
            first: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Retry {
    /// The wait after failed try number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .first
            .checked_mul(
                1u32.checked_shl(attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .unwrap_or(self.max);
        doubled.min(self.max)
    }

    /// Calls `call` until it succeeds, fails fatally or has been tried [`Retry::tries`] times,
    /// sleeping on `clock` in between. `what` names the call in logs and metrics.
    pub fn run<T>(
        &self,
        clock: &impl Clock,
        worker: &str,
        what: &'static str,
        mut call: impl FnMut() -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut attempt = 1;
        loop {
            match call() {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt < self.tries.max(1) => {
                    let wait = self.delay(attempt);
                    tracing::warn!(worker, what, attempt, error = %e, wait_ms = wait.as_millis() as u64, "transient client error; trying again");
                    crate::metrics::client_retry(worker, what, e.kind());
                    clock.sleep(wait);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests;
