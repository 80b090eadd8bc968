//! The hub: the latest market state and the clients' subscriptions, fed by the [`reader`]
//! thread, fanning out one JSON text per message to every subscribed client.
//!
//! Bounded memory: each client has a queue of at most [`HubConfig::client_queue`] messages
//! (messages are shared, `Arc<str>`, between the clients that get them). The hub only ever
//! `try_send`s: a client whose queue is full is dropped at once ([`CloseReason::SlowConsumer`]) and
//! counted (`tradestream_live_slow_consumers_total`); the hub never waits for a client. Recent
//! trades and candles kept for new subscribers are capped per symbol, books hold only levels
//! that are open, and only configured instruments are tracked.
//!
//! [`reader`]: crate::reader

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tradestream_engine::Instruments;
use tradestream_runtime::KafkaConfig;

use crate::book::Book;
use crate::channel::{Channel, ChannelError, ClientRequest};
use crate::reader::Update;

/// The topics the hub reads.
#[derive(Debug, Clone)]
pub struct HubTopics {
    /// Engine events: `book_delta` and `top_of_book` (others are ignored).
    pub market_data: String,
    /// Engine `trade` events.
    pub trades: String,
    /// Candle records.
    pub candles: String,
    /// Notification records.
    pub notifications: String,
}

impl Default for HubTopics {
    fn default() -> Self {
        HubTopics {
            market_data: "market-data".into(),
            trades: "trades".into(),
            candles: "candles".into(),
            notifications: "notifications".into(),
        }
    }
}

/// Settings of a [`Hub`].
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The cluster (read with [`KafkaConfig::reader`], no consumer group).
    pub kafka: KafkaConfig,
    /// The instruments: channels exist for these symbols only.
    pub instruments: Instruments,
    /// Topic names.
    pub topics: HubTopics,
    /// Messages a client's queue holds before the client is dropped as a slow consumer.
    pub client_queue: usize,
    /// Bytes of messages a client's queue holds before the client is dropped likewise.
    pub client_queue_bytes: usize,
    /// Ladder levels per side in `book:` messages.
    pub ladder_depth: usize,
    /// Book updates of one symbol are coalesced over this long (one message per interval).
    pub flush_interval: Duration,
    /// Connections beyond this are closed (1013) at once.
    pub max_clients: usize,
    /// Channels one client may hold.
    pub max_channels_per_client: usize,
    /// Recent trades per symbol sent to a new `trades:` subscriber.
    pub recent_trades: usize,
    /// Recent candles per symbol and interval sent to a new `candles:` subscriber.
    pub recent_candles: usize,
}

impl HubConfig {
    /// Defaults for the standard topics of topics.yaml.
    pub fn new(kafka: KafkaConfig, instruments: Instruments) -> Self {
        HubConfig {
            kafka,
            instruments,
            topics: HubTopics::default(),
            client_queue: 1024,
            client_queue_bytes: 4 << 20,
            ladder_depth: 10,
            flush_interval: Duration::from_millis(50),
            max_clients: 10_000,
            max_channels_per_client: 64,
            recent_trades: 50,
            recent_candles: 120,
        }
    }
}

/// Why the hub closed a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its queue was full: it did not read fast enough.
    SlowConsumer,
    /// The hub is stopping.
    Shutdown,
}

impl CloseReason {
    /// The WebSocket close code and reason.
    pub fn frame(self) -> (u16, &'static str) {
        match self {
            CloseReason::SlowConsumer => (1008, "slow consumer"),
            CloseReason::Shutdown => (1001, "going away"),
        }
    }
}

/// The hub's counters (also reported as `tradestream_live_*` metrics).
#[derive(Debug, Default)]
pub struct HubStats {
    /// Records read from the topics.
    pub records: AtomicU64,
    /// Records that could not be decoded (skipped).
    pub undecodable: AtomicU64,
    /// Messages queued to clients.
    pub messages: AtomicU64,
    /// Clients dropped because their queue was full.
    pub slow_consumers: AtomicU64,
    /// Partitions the reader has assigned (at their end offset).
    pub partitions: AtomicU64,
}

/// A connected client's end: its queue and the hub's close notice.
#[derive(Debug)]
pub struct ClientHandle {
    /// The client's id in the hub.
    pub id: u64,
    /// Messages to send, in order.
    pub queue: mpsc::Receiver<Arc<str>>,
    /// Fires when the hub drops the client.
    pub closed: oneshot::Receiver<CloseReason>,
    /// Bytes in `queue`: the connection subtracts what it takes out.
    pub queued_bytes: Arc<AtomicUsize>,
}

/// Too many clients.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many stream clients")]
pub struct HubFull;

/// The stream's fan-out.
#[derive(Debug)]
pub struct Hub {
    pub(crate) shared: Arc<Shared>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: HubConfig,
    state: Mutex<State>,
    pub(crate) stop: AtomicBool,
    pub(crate) stats: HubStats,
}

#[derive(Debug)]
struct Client {
    tx: mpsc::Sender<Arc<str>>,
    bytes: Arc<AtomicUsize>,
    close: Option<oneshot::Sender<CloseReason>>,
    account: Option<String>,
    channels: BTreeSet<Channel>,
}

#[derive(Debug, Default)]
struct State {
    /// [`HubConfig::client_queue_bytes`].
    max_bytes: usize,
    next_id: u64,
    clients: HashMap<u64, Client>,
    /// Public channel → its subscribers.
    subs: HashMap<Channel, BTreeSet<u64>>,
    /// Account → clients subscribed to its notifications.
    notifications: HashMap<String, BTreeSet<u64>>,
    books: HashMap<String, Book>,
    dirty: BTreeSet<String>,
    trades: HashMap<String, VecDeque<Value>>,
    candles: HashMap<(String, String), BTreeMap<i64, Arc<str>>>,
    /// Since the last flush: trades per symbol, candles by (symbol, interval, bucket),
    /// notifications per account.
    pending_trades: BTreeMap<String, Vec<Value>>,
    pending_candles: BTreeMap<(String, String, i64), Value>,
    pending_notifications: BTreeMap<String, Vec<Value>>,
}

/// `{"channel": ..., "data": ...}` as text.
fn message(channel: &str, data: &Value) -> Arc<str> {
    json!({"channel": channel, "data": data}).to_string().into()
}

/// `{"error": {"code", "message"}}` as text.
pub(crate) fn error_message(code: &str, text: &str) -> Arc<str> {
    json!({"error": {"code": code, "message": text}})
        .to_string()
        .into()
}

impl Hub {
    /// A hub that is fed by nothing yet: [`Hub::start`] adds the reader thread. Useful alone for
    /// tests of the fan-out ([`Hub::apply`]).
    pub fn new(config: HubConfig) -> Hub {
        Hub {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    max_bytes: config.client_queue_bytes.max(1),
                    ..State::default()
                }),
                config,
                stop: AtomicBool::new(false),
                stats: HubStats::default(),
            }),
            reader: Mutex::new(None),
        }
    }

    /// A hub with its reader thread started (it assigns every partition of the topics at its end
    /// offset, retrying topics that do not exist yet).
    pub fn start(config: HubConfig) -> std::io::Result<Arc<Hub>> {
        let hub = Arc::new(Hub::new(config));
        let shared = hub.shared.clone();
        let handle = std::thread::Builder::new()
            .name("live-hub".into())
            .spawn(move || crate::reader::run(&shared))?;
        *lock(&hub.reader) = Some(handle);
        Ok(hub)
    }

    /// The settings.
    pub fn config(&self) -> &HubConfig {
        &self.shared.config
    }

    /// The counters.
    pub fn stats(&self) -> &HubStats {
        &self.shared.stats
    }

    /// The instruments.
    pub fn instruments(&self) -> &Instruments {
        &self.shared.config.instruments
    }

    /// Connected clients.
    pub fn clients(&self) -> usize {
        self.shared.state().clients.len()
    }

    /// The longest client queue now (never above [`HubConfig::client_queue`]).
    pub fn longest_queue(&self) -> usize {
        self.shared
            .state()
            .clients
            .values()
            .map(|c| c.tx.max_capacity() - c.tx.capacity())
            .max()
            .unwrap_or(0)
    }

    /// The most bytes queued for one client now (never above
    /// [`HubConfig::client_queue_bytes`]).
    pub fn largest_queue_bytes(&self) -> usize {
        self.shared
            .state()
            .clients
            .values()
            .map(|c| c.bytes.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Registers a client; `account` is the authenticated one (None: public channels only).
    pub fn connect(&self, account: Option<String>) -> Result<ClientHandle, HubFull> {
        let mut state = self.shared.state();
        if state.clients.len() >= self.shared.config.max_clients {
            return Err(HubFull);
        }
        let (tx, queue) = mpsc::channel(self.shared.config.client_queue.max(1));
        let (close, closed) = oneshot::channel();
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        state.next_id += 1;
        let id = state.next_id;
        state.clients.insert(
            id,
            Client {
                tx,
                bytes: queued_bytes.clone(),
                close: Some(close),
                account,
                channels: BTreeSet::new(),
            },
        );
        metrics::gauge!("tradestream_live_clients").set(state.clients.len() as f64);
        Ok(ClientHandle {
            id,
            queue,
            closed,
            queued_bytes,
        })
    }

    /// Removes a client (its connection ended).
    pub fn disconnect(&self, id: u64) {
        let mut state = self.shared.state();
        state.remove(id);
        metrics::gauge!("tradestream_live_clients").set(state.clients.len() as f64);
    }

    /// Handles one text message of client `id`: subscribe, unsubscribe or ping. Answers (and
    /// errors, for anything malformed) go to the client's queue.
    pub fn request(&self, id: u64, text: &str) {
        let shared = &self.shared;
        let mut state = shared.state();
        let reply = |state: &mut State, msg: Arc<str>| state.push(id, msg, &shared.stats);
        let req: ClientRequest = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let msg = error_message(
                    "bad_request",
                    &format!("expected {{\"op\":\"subscribe\",\"channels\":[...]}}: {e}"),
                );
                return reply(&mut state, msg);
            }
        };
        match req.op.as_str() {
            "subscribe" | "unsubscribe" => {}
            "ping" => return reply(&mut state, json!({"op": "pong"}).to_string().into()),
            other => {
                let msg = error_message(
                    "bad_request",
                    &format!(
                        "unknown op {:?}: expected subscribe, unsubscribe or ping",
                        other.chars().take(32).collect::<String>()
                    ),
                );
                return reply(&mut state, msg);
            }
        }
        let subscribe = req.op == "subscribe";
        let mut done = Vec::new();
        for name in &req.channels {
            match self.channel_for(&state, id, name) {
                Err(e) => reply(&mut state, error_message(e.code(), &e.to_string())),
                Ok(ch) if subscribe => {
                    let held = state.clients.get(&id).map_or(0, |c| c.channels.len());
                    if held >= shared.config.max_channels_per_client {
                        let text = format!(
                            "at most {} channels per connection",
                            shared.config.max_channels_per_client
                        );
                        reply(&mut state, error_message("too_many_channels", &text));
                        continue;
                    }
                    if state.subscribe(id, &ch) {
                        done.push(ch);
                    }
                }
                Ok(ch) => {
                    state.unsubscribe(id, &ch);
                    done.push(ch);
                }
            }
        }
        let op = if subscribe {
            "subscribed"
        } else {
            "unsubscribed"
        };
        let names: Vec<String> = done.iter().map(Channel::to_string).collect();
        reply(
            &mut state,
            json!({"op": op, "channels": names}).to_string().into(),
        );
        // The answer first, then what a new subscriber gets at once.
        if subscribe {
            for ch in &done {
                state.snapshot(id, ch, &shared.config, &shared.stats);
            }
        }
    }

    fn channel_for(&self, state: &State, id: u64, name: &str) -> Result<Channel, ChannelError> {
        let instruments = &self.shared.config.instruments;
        let ch = Channel::parse(name, |s| {
            tradestream_engine::Symbol::new(s)
                .ok()
                .is_some_and(|s| instruments.get(&s).is_some())
        })?;
        if ch == Channel::Notifications
            && state
                .clients
                .get(&id)
                .and_then(|c| c.account.as_ref())
                .is_none()
        {
            return Err(ChannelError::Unauthenticated);
        }
        Ok(ch)
    }

    /// Applies decoded records and fans them out; then sends the books they changed.
    pub fn apply(&self, updates: Vec<Update>) {
        apply_shared(&self.shared, updates);
    }

    /// Stops the reader thread and closes every client (1001).
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(h) = lock(&self.reader).take() {
            let _ = h.join();
        }
        let mut state = self.shared.state();
        let ids: Vec<u64> = state.clients.keys().copied().collect();
        for id in ids {
            if let Some(mut c) = state.clients.remove(&id)
                && let Some(close) = c.close.take()
            {
                let _ = close.send(CloseReason::Shutdown);
            }
        }
        state.subs.clear();
        state.notifications.clear();
    }
}

/// [`Hub::apply`] for the reader thread, which holds the shared state only.
pub(crate) fn apply_shared(shared: &Shared, updates: Vec<Update>) {
    let mut state = shared.state();
    for u in updates {
        state.apply(u);
    }
    state.flush(&shared.config, &shared.stats);
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Whether `symbol` is a configured instrument.
    pub(crate) fn knows(&self, symbol: &str) -> bool {
        tradestream_engine::Symbol::new(symbol)
            .ok()
            .is_some_and(|s| self.config.instruments.get(&s).is_some())
    }
}

impl State {
    /// Queues `msg` for client `id`; a full queue drops the client as a slow consumer.
    fn push(&mut self, id: u64, msg: Arc<str>, stats: &HubStats) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let len = msg.len();
        let over = client.bytes.load(Ordering::Relaxed) + len > self.max_bytes;
        let sent = if over {
            Err(mpsc::error::TrySendError::Full(msg))
        } else {
            client.tx.try_send(msg)
        };
        match sent {
            Ok(()) => {
                client.bytes.fetch_add(len, Ordering::Relaxed);
                stats.messages.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("tradestream_live_slow_consumers_total").increment(1);
                tracing::info!(client = id, "stream client dropped: slow consumer");
                if let Some(mut c) = self.remove(id)
                    && let Some(close) = c.close.take()
                {
                    let _ = close.send(CloseReason::SlowConsumer);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.remove(id);
            }
        }
    }

    fn remove(&mut self, id: u64) -> Option<Client> {
        let client = self.clients.remove(&id)?;
        for ch in &client.channels {
            self.unlink(id, ch, client.account.as_deref());
        }
        Some(client)
    }

    fn unlink(&mut self, id: u64, ch: &Channel, account: Option<&str>) {
        let set = match ch {
            Channel::Notifications => account.and_then(|a| self.notifications.get_mut(a)),
            public => self.subs.get_mut(public),
        };
        let Some(set) = set else { return };
        set.remove(&id);
        if set.is_empty() {
            match ch {
                Channel::Notifications => {
                    if let Some(a) = account {
                        self.notifications.remove(a);
                    }
                }
                public => {
                    self.subs.remove(public);
                }
            }
        }
    }

    /// Adds the subscription; false if the client already had it (or is gone).
    fn subscribe(&mut self, id: u64, ch: &Channel) -> bool {
        let Some(client) = self.clients.get_mut(&id) else {
            return false;
        };
        if !client.channels.insert(ch.clone()) {
            return false;
        }
        let account = client.account.clone();
        match (ch, account) {
            (Channel::Notifications, Some(a)) => {
                self.notifications.entry(a).or_default().insert(id);
            }
            (Channel::Notifications, None) => {}
            (public, _) => {
                self.subs.entry(public.clone()).or_default().insert(id);
            }
        }
        true
    }

    fn unsubscribe(&mut self, id: u64, ch: &Channel) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if client.channels.remove(ch) {
            let account = client.account.clone();
            self.unlink(id, ch, account.as_deref());
        }
    }

    /// What a new subscriber gets at once: the book as it is, recent trades or candles.
    fn snapshot(&mut self, id: u64, ch: &Channel, config: &HubConfig, stats: &HubStats) {
        let msgs: Vec<Arc<str>> = match ch {
            Channel::Book(s) => {
                let book = self.books.get(s).cloned().unwrap_or_default();
                vec![message(
                    &ch.to_string(),
                    &book.to_json(s, config.ladder_depth),
                )]
            }
            Channel::Trades(s) => match self.trades.get(s) {
                Some(t) if !t.is_empty() => {
                    vec![message(
                        &ch.to_string(),
                        &Value::Array(t.iter().cloned().collect()),
                    )]
                }
                _ => Vec::new(),
            },
            Channel::Candles(s, i) => self
                .candles
                .get(&(s.clone(), i.clone()))
                .map(|c| c.values().cloned().collect())
                .unwrap_or_default(),
            Channel::Notifications => Vec::new(),
        };
        for m in msgs {
            self.push(id, m, stats);
        }
    }

    /// Sends `msg` to every subscriber of the public channel `ch`.
    fn fan_out(&mut self, ch: &Channel, msg: &Arc<str>, stats: &HubStats) {
        let ids: Vec<u64> = self
            .subs
            .get(ch)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for id in ids {
            self.push(id, msg.clone(), stats);
        }
    }

    fn apply(&mut self, update: Update) {
        match update {
            Update::Delta {
                symbol,
                side,
                price,
                qty,
                ts,
                seq,
            } => {
                self.books
                    .entry(symbol.clone())
                    .or_default()
                    .delta(side, price, qty, ts, seq);
                self.dirty.insert(symbol);
            }
            Update::Top {
                symbol,
                bid,
                ask,
                ts,
                seq,
            } => {
                self.books
                    .entry(symbol.clone())
                    .or_default()
                    .top(bid, ask, ts, seq);
                self.dirty.insert(symbol);
            }
            Update::Trade { symbol, data } => {
                self.pending_trades.entry(symbol).or_default().push(data);
            }
            Update::Candle {
                symbol,
                interval,
                bucket_start,
                data,
            } => {
                self.pending_candles
                    .insert((symbol, interval, bucket_start), data);
            }
            Update::Notification { account, data } => {
                if self.notifications.contains_key(&account) {
                    self.pending_notifications
                        .entry(account)
                        .or_default()
                        .push(data);
                }
            }
        }
    }

    /// What changed since the last flush, coalesced: one `book:` message per symbol changed,
    /// one `trades:` message per symbol (its trades in order, an array), the latest version of
    /// each candle, one `notifications` message per account (an array).
    fn flush(&mut self, config: &HubConfig, stats: &HubStats) {
        for symbol in std::mem::take(&mut self.dirty) {
            let ch = Channel::Book(symbol.clone());
            if !self.subs.contains_key(&ch) {
                continue;
            }
            let Some(book) = self.books.get(&symbol) else {
                continue;
            };
            let msg = message(&ch.to_string(), &book.to_json(&symbol, config.ladder_depth));
            self.fan_out(&ch, &msg, stats);
        }
        for (symbol, trades) in std::mem::take(&mut self.pending_trades) {
            let recent = self.trades.entry(symbol.clone()).or_default();
            recent.extend(trades.iter().cloned());
            while recent.len() > config.recent_trades {
                recent.pop_front();
            }
            let ch = Channel::Trades(symbol);
            if self.subs.contains_key(&ch) {
                let msg = message(&ch.to_string(), &Value::Array(trades));
                self.fan_out(&ch, &msg, stats);
            }
        }
        for ((symbol, interval, bucket), data) in std::mem::take(&mut self.pending_candles) {
            let ch = Channel::Candles(symbol.clone(), interval.clone());
            let msg = message(&ch.to_string(), &data);
            let recent = self.candles.entry((symbol, interval)).or_default();
            recent.insert(bucket, msg.clone());
            while recent.len() > config.recent_candles {
                recent.pop_first();
            }
            self.fan_out(&ch, &msg, stats);
        }
        for (account, notes) in std::mem::take(&mut self.pending_notifications) {
            let ids: Vec<u64> = self
                .notifications
                .get(&account)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            let msg = message("notifications", &Value::Array(notes));
            for id in ids {
                self.push(id, msg.clone(), stats);
            }
        }
    }
}
