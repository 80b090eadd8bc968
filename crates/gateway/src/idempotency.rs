//! Client idempotency keys (`Idempotency-Key`) and shared nonces.
//!
//! The first request with a key (per account) within the window is the owner: it runs, and its
//! answer is stored. A later request with the same key gets that answer again (and no second
//! record reaches Kafka). A duplicate that arrives while the first is still in flight **waits**
//! for the first answer (up to a bound, then 409 `idempotency_in_flight`); a first request that
//! ends without a final answer (503: the broker did not acknowledge, nothing to remember) frees
//! the key, so the client's retry runs anew. The same key with another method, path or body is
//! refused with 422 `idempotency_key_reused`.
//!
//! Storage: in memory per instance (bounded; expired entries are dropped first, and past the
//! bound new keys are refused with 503), or Redis when configured, shared by every instance:
//! `SET … NX PX` claims a key (`pending`), the owner overwrites it with the answer, and nonces
//! use `SET … NX PX` too.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// A final answer, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

/// What a claim on a key gives.
#[derive(Debug)]
pub enum Claim {
    /// This request runs; give the guard its answer.
    Owner(Guard),
    /// The key was answered already (or the first request finished while this one waited).
    Answered(StoredAnswer),
    /// The first request is still running past the wait.
    InFlight,
    /// The same key with a different request.
    Mismatch,
    /// No room for another key, or Redis failed.
    Unavailable(String),
}

/// FNV-1a 64 of the parts: a stable fingerprint of a request (the same on every instance).
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(std::iter::once(&0xff)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[derive(Debug)]
enum Slot {
    InFlight(u64, watch::Receiver<Option<StoredAnswer>>),
    Done(u64, StoredAnswer),
}

#[derive(Debug, Default)]
struct Memory {
    slots: HashMap<String, (i64, Slot)>,
    expiry: BinaryHeap<Reverse<(i64, String)>>,
}

impl Memory {
    fn prune(&mut self, now_ms: i64) {
        while let Some(Reverse((at, _))) = self.expiry.peek() {
            if *at >= now_ms {
                break;
            }
            if let Some(Reverse((at, id))) = self.expiry.pop()
                && self.slots.get(&id).is_some_and(|(exp, _)| *exp == at)
            {
                self.slots.remove(&id);
            }
        }
    }
}

/// Where idempotency keys (and, with Redis, nonces) live.
#[derive(Clone)]
pub struct Idempotency {
    backend: Backend,
    window_ms: i64,
    max_entries: usize,
    wait: Duration,
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<Mutex<Memory>>),
    Redis(redis::aio::ConnectionManager),
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        };
        f.debug_struct("Idempotency")
            .field("backend", &kind)
            .field("window_ms", &self.window_ms)
            .finish()
    }
}

/// The owner's hold on a key: [`Guard::finish`] stores the answer; dropping it unanswered frees
/// the key.
#[derive(Debug)]
pub struct Guard {
    id: String,
    fp: u64,
    store: Idempotency,
    tx: Option<watch::Sender<Option<StoredAnswer>>>,
    done: bool,
}

impl Guard {
    /// Stores the answer for later duplicates.
    pub async fn finish(mut self, answer: &StoredAnswer) {
        self.done = true;
        match &self.store.backend {
            Backend::Memory(m) => {
                let expires = now_ms() + self.store.window_ms;
                {
                    let mut m = m.lock().unwrap_or_else(PoisonError::into_inner);
                    m.slots.insert(
                        self.id.clone(),
                        (expires, Slot::Done(self.fp, answer.clone())),
                    );
                    m.expiry.push(Reverse((expires, self.id.clone())));
                }
                if let Some(tx) = self.tx.take() {
                    let _ = tx.send(Some(answer.clone()));
                }
            }
            Backend::Redis(conn) => {
                let value = RedisValue::Done {
                    fp: self.fp,
                    answer: answer.clone(),
                };
                let mut conn = conn.clone();
                let opts = redis::SetOptions::default()
                    .with_expiration(redis::SetExpiry::PX(window_u64(self.store.window_ms)));
                let stored: redis::RedisResult<()> =
                    conn.set_options(&self.id, value.encode(), opts).await;
                if let Err(e) = stored {
                    tracing::warn!(error = %e, "cannot store an idempotent answer in Redis");
                }
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        match &self.store.backend {
            Backend::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(PoisonError::into_inner);
                if matches!(m.slots.get(&self.id), Some((_, Slot::InFlight(..)))) {
                    m.slots.remove(&self.id);
                }
                // Waiters see the sender dropped and answer 409.
            }
            Backend::Redis(conn) => {
                let mut conn = conn.clone();
                let id = std::mem::take(&mut self.id);
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _: redis::RedisResult<()> = conn.del(&id).await;
                    });
                }
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum RedisValue {
    Pending { fp: u64 },
    Done { fp: u64, answer: StoredAnswer },
}

impl RedisValue {
    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn window_u64(ms: i64) -> u64 {
    u64::try_from(ms.max(1)).unwrap_or(1)
}

/// Server time, unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Idempotency {
    /// In memory, at most `max_entries` keys, answers kept `window_ms`; a duplicate waits at most
    /// `wait` for the first request's answer.
    pub fn memory(window_ms: i64, max_entries: usize, wait: Duration) -> Self {
        Idempotency {
            backend: Backend::Memory(Arc::default()),
            window_ms,
            max_entries,
            wait,
        }
    }

    /// In Redis (shared by every instance).
    pub fn redis(conn: redis::aio::ConnectionManager, window_ms: i64, wait: Duration) -> Self {
        Idempotency {
            backend: Backend::Redis(conn),
            window_ms,
            max_entries: usize::MAX,
            wait,
        }
    }

    /// Whether keys are shared through Redis.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// Claims `key` of `account` for a request with fingerprint `fp`.
    pub async fn claim(&self, account: &str, key: &str, fp: u64) -> Claim {
        let id = format!("ts:idem:{account}:{key}");
        match &self.backend {
            Backend::Memory(m) => self.claim_memory(m, id, fp).await,
            Backend::Redis(conn) => self.claim_redis(conn.clone(), id, fp).await,
        }
    }

    async fn claim_memory(&self, m: &Arc<Mutex<Memory>>, id: String, fp: u64) -> Claim {
        let mut rx = {
            let mut mem = m.lock().unwrap_or_else(PoisonError::into_inner);
            let now = now_ms();
            mem.prune(now);
            match mem.slots.get(&id) {
                Some((_, Slot::Done(f, _) | Slot::InFlight(f, _))) if *f != fp => {
                    return Claim::Mismatch;
                }
                Some((_, Slot::Done(_, answer))) => return Claim::Answered(answer.clone()),
                Some((_, Slot::InFlight(_, rx))) => rx.clone(),
                None => {
                    if mem.slots.len() >= self.max_entries {
                        return Claim::Unavailable("too many idempotency keys held".into());
                    }
                    let (tx, rx) = watch::channel(None);
                    let expires = now + self.window_ms;
                    mem.slots
                        .insert(id.clone(), (expires, Slot::InFlight(fp, rx)));
                    mem.expiry.push(Reverse((expires, id.clone())));
                    return Claim::Owner(Guard {
                        id,
                        fp,
                        store: self.clone(),
                        tx: Some(tx),
                        done: false,
                    });
                }
            }
        };
        let waited = tokio::time::timeout(self.wait, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(answer)) => answer.clone().map_or(Claim::InFlight, Claim::Answered),
            _ => Claim::InFlight,
        }
    }

    async fn claim_redis(
        &self,
        mut conn: redis::aio::ConnectionManager,
        id: String,
        fp: u64,
    ) -> Claim {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let opts = redis::SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(redis::SetExpiry::PX(window_u64(self.window_ms)));
            let set: redis::RedisResult<Option<String>> = conn
                .set_options(&id, RedisValue::Pending { fp }.encode(), opts)
                .await;
            match set {
                Err(e) => return Claim::Unavailable(format!("redis: {e}")),
                Ok(Some(_)) => {
                    return Claim::Owner(Guard {
                        id,
                        fp,
                        store: self.clone(),
                        tx: None,
                        done: false,
                    });
                }
                Ok(None) => {}
            }
            let current: redis::RedisResult<Option<String>> = conn.get(&id).await;
            let current = match current {
                Err(e) => return Claim::Unavailable(format!("redis: {e}")),
                // Freed between the two calls: claim again.
                Ok(None) => continue,
                Ok(Some(v)) => serde_json::from_str::<RedisValue>(&v).ok(),
            };
            match current {
                Some(RedisValue::Done { fp: f, answer }) => {
                    return if f == fp {
                        Claim::Answered(answer)
                    } else {
                        Claim::Mismatch
                    };
                }
                Some(RedisValue::Pending { fp: f }) if f != fp => return Claim::Mismatch,
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Claim::InFlight;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// With Redis: records a nonce of `key` until `forget_after_ms`; false if another instance
    /// saw it. Without Redis always true (the key ring's own cache is the only one).
    pub async fn shared_nonce(
        &self,
        key: &str,
        nonce: &str,
        forget_after_ms: i64,
    ) -> Result<bool, String> {
        let Backend::Redis(conn) = &self.backend else {
            return Ok(true);
        };
        let ttl = window_u64(forget_after_ms.saturating_sub(now_ms()));
        let opts = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(ttl));
        let mut conn = conn.clone();
        let set: redis::RedisResult<Option<String>> = conn
            .set_options(format!("ts:nonce:{key}:{nonce}"), 1, opts)
            .await;
        set.map(|v| v.is_some()).map_err(|e| format!("redis: {e}"))
    }

    /// Redis reachable (always true in memory).
    pub async fn ping(&self) -> Result<(), String> {
        let Backend::Redis(conn) = &self.backend else {
            return Ok(());
        };
        let mut conn = conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: u16) -> StoredAnswer {
        StoredAnswer {
            status: n,
            body: format!("{{\"n\":{n}}}"),
        }
    }

    #[tokio::test]
    async fn first_answer_is_returned_again() {
        let idem = Idempotency::memory(60_000, 10, Duration::from_millis(200));
        let Claim::Owner(g) = idem.claim("alice", "k1", 1).await else {
            panic!("first claim owns")
        };
        g.finish(&answer(202)).await;
        assert!(
            matches!(idem.claim("alice", "k1", 1).await, Claim::Answered(a) if a == answer(202))
        );
        assert!(matches!(
            idem.claim("alice", "k1", 2).await,
            Claim::Mismatch
        ));
        assert!(matches!(idem.claim("bob", "k1", 2).await, Claim::Owner(_)));
    }

    #[tokio::test]
    async fn a_concurrent_duplicate_waits_for_the_first() {
        let idem = Idempotency::memory(60_000, 10, Duration::from_secs(2));
        let Claim::Owner(g) = idem.claim("alice", "k1", 1).await else {
            panic!("first claim owns")
        };
        let other = idem.clone();
        let dup = tokio::spawn(async move { other.claim("alice", "k1", 1).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        g.finish(&answer(202)).await;
        assert!(matches!(dup.await.unwrap(), Claim::Answered(a) if a == answer(202)));
    }

    #[tokio::test]
    async fn an_unanswered_first_frees_the_key() {
        let idem = Idempotency::memory(60_000, 10, Duration::from_secs(2));
        let Claim::Owner(g) = idem.claim("alice", "k1", 1).await else {
            panic!("first claim owns")
        };
        let other = idem.clone();
        let dup = tokio::spawn(async move { other.claim("alice", "k1", 1).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(g);
        assert!(matches!(dup.await.unwrap(), Claim::InFlight));
        assert!(matches!(
            idem.claim("alice", "k1", 1).await,
            Claim::Owner(_)
        ));
    }

    #[tokio::test]
    async fn bounded() {
        let idem = Idempotency::memory(60_000, 1, Duration::from_millis(10));
        let _g = idem.claim("a", "1", 1).await;
        assert!(matches!(
            idem.claim("a", "2", 1).await,
            Claim::Unavailable(_)
        ));
    }
}
