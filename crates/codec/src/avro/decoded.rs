//! Engine events read back ([`decode_event`]) as [`DecodedEvent`]s, in decimals: the reader
//! needs no instrument configuration.

use tradestream_engine::{Account, Decimal, Name, OrderId, OrderType, Request, Side, Symbol, Tif};

use super::event::{EventRecord, EventTag};
use super::fields::{decimal_of, name_of, opt_decimal};
use super::{AvroError, Provenance, RecordType};

/// An engine event read back from Avro: the engine's [`Event`](tradestream_engine::Event) with prices and quantities as the
/// decimals on the wire (the reader needs no instrument configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEvent {
    /// Output sequence number (per input partition).
    pub seq: u64,
    /// Event time, milliseconds.
    pub ts: i64,
    /// Instrument.
    pub symbol: Symbol,
    /// Input partition of the causing command.
    pub source_partition: i32,
    /// Input offset of the causing command.
    pub source_offset: i64,
    /// What happened.
    pub kind: DecodedKind,
}

impl DecodedEvent {
    /// The provenance the event was encoded with.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            source_partition: self.source_partition,
            source_offset: self.source_offset,
            seq: self.seq,
        }
    }
}

/// Best price and its quantity on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecimalLevel {
    /// Price.
    pub price: Decimal,
    /// Aggregate open quantity.
    pub qty: Decimal,
}

/// What happened, as [`EventKind`](tradestream_engine::EventKind) but in decimals. See the JSON contract for the meanings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedKind {
    /// A new order passed validation.
    Accepted {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        account: Account,
        /// Buy or sell.
        side: Side,
        /// Limit or market.
        order_type: OrderType,
        /// Time in force.
        tif: Tif,
        /// Limit price (none for market orders).
        price: Option<Decimal>,
        /// Quantity.
        qty: Decimal,
        /// Post-only flag.
        post_only: bool,
    },
    /// A command was refused.
    Rejected {
        /// The order named by the command (empty if none could be read).
        order_id: OrderId,
        /// Whom to tell ([`EventKind::Rejected`](tradestream_engine::EventKind::Rejected)'s `account`); empty when nobody can be told,
        /// and for records written before rejections carried an account (`null`).
        account: Account,
        /// What was asked.
        request: Request,
        /// The reason code ([`RejectReason::code`](tradestream_engine::RejectReason::code)).
        reason: String,
        /// Extra text (`malformed`, `bad_timestamp`).
        detail: Option<String>,
    },
    /// One fill at the maker's price.
    Trade {
        /// Price.
        price: Decimal,
        /// Quantity.
        qty: Decimal,
        /// The resting order.
        maker_order_id: OrderId,
        /// Its owner.
        maker_account: Account,
        /// What the maker has left open.
        maker_leaves: Decimal,
        /// The incoming order.
        taker_order_id: OrderId,
        /// Its owner.
        taker_account: Account,
        /// The incoming order's side.
        taker_side: Side,
        /// What the taker has left.
        taker_leaves: Decimal,
    },
    /// A live order was cancelled on request.
    Cancelled {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        account: Account,
        /// The open quantity cancelled.
        qty: Decimal,
    },
    /// A live order's price and/or open quantity changed.
    Replaced {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        account: Account,
        /// Its side.
        side: Side,
        /// Price before.
        old_price: Decimal,
        /// Price after.
        price: Decimal,
        /// Open quantity before.
        old_qty: Decimal,
        /// Open quantity after.
        qty: Decimal,
        /// True when the order kept its place in the queue.
        priority_kept: bool,
    },
    /// The unfilled remainder of an IOC, FOK or market order was dropped.
    Expired {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        account: Account,
        /// The quantity that expired.
        qty: Decimal,
    },
    /// The aggregate quantity at one price level changed (zero: the level is gone).
    BookDelta {
        /// Side of the book.
        side: Side,
        /// The level's price.
        price: Decimal,
        /// Its new aggregate open quantity.
        qty: Decimal,
    },
    /// The best bid and/or ask changed.
    TopOfBook {
        /// Best bid, if any.
        bid: Option<DecimalLevel>,
        /// Best ask, if any.
        ask: Option<DecimalLevel>,
    },
}

impl DecodedKind {
    /// The contract's name for this event (as [`EventKind::name`](tradestream_engine::EventKind::name)).
    pub const fn name(&self) -> &'static str {
        match self {
            DecodedKind::Accepted { .. } => "accepted",
            DecodedKind::Rejected { .. } => "rejected",
            DecodedKind::Trade { .. } => "trade",
            DecodedKind::Cancelled { .. } => "cancelled",
            DecodedKind::Replaced { .. } => "replaced",
            DecodedKind::Expired { .. } => "expired",
            DecodedKind::BookDelta { .. } => "book_delta",
            DecodedKind::TopOfBook { .. } => "top_of_book",
        }
    }
}

/// Reads one engine event (either framing).
pub fn decode_event(bytes: &[u8]) -> Result<DecodedEvent, AvroError> {
    let r = EventRecord::read(RecordType::EngineEvent.body(bytes)?)?;
    let f = Need(r.event);
    let kind = match r.event {
        EventTag::Accepted => DecodedKind::Accepted {
            order_id: f.order_id("order_id", r.order_id)?,
            account: f.account("account", r.account)?,
            side: f.get("side", r.side)?,
            order_type: f.get("order_type", r.order_type)?,
            tif: f.get("tif", r.tif)?,
            price: opt_decimal("price", r.price)?,
            qty: f.decimal("qty", r.qty)?,
            post_only: f.get("post_only", r.post_only)?,
        },
        EventTag::Rejected => DecodedKind::Rejected {
            order_id: f.order_id("order_id", r.order_id)?,
            // Optional: records written before rejections carried an account have `null` here.
            account: r
                .account
                .map(|a| name_of("account", a, Account::new))
                .transpose()?
                .unwrap_or(Account(Name::EMPTY)),
            request: f.get("request", r.request)?,
            reason: f.get("reason", r.reason)?.to_owned(),
            detail: r.detail.map(str::to_owned),
        },
        EventTag::Trade => DecodedKind::Trade {
            price: f.decimal("price", r.price)?,
            qty: f.decimal("qty", r.qty)?,
            maker_order_id: f.order_id("maker_order_id", r.maker_order_id)?,
            maker_account: f.account("maker_account", r.maker_account)?,
            maker_leaves: f.decimal("maker_leaves", r.maker_leaves)?,
            taker_order_id: f.order_id("taker_order_id", r.taker_order_id)?,
            taker_account: f.account("taker_account", r.taker_account)?,
            taker_side: f.get("taker_side", r.taker_side)?,
            taker_leaves: f.decimal("taker_leaves", r.taker_leaves)?,
        },
        EventTag::Cancelled => DecodedKind::Cancelled {
            order_id: f.order_id("order_id", r.order_id)?,
            account: f.account("account", r.account)?,
            qty: f.decimal("qty", r.qty)?,
        },
        EventTag::Expired => DecodedKind::Expired {
            order_id: f.order_id("order_id", r.order_id)?,
            account: f.account("account", r.account)?,
            qty: f.decimal("qty", r.qty)?,
        },
        EventTag::Replaced => DecodedKind::Replaced {
            order_id: f.order_id("order_id", r.order_id)?,
            account: f.account("account", r.account)?,
            side: f.get("side", r.side)?,
            old_price: f.decimal("old_price", r.old_price)?,
            price: f.decimal("price", r.price)?,
            old_qty: f.decimal("old_qty", r.old_qty)?,
            qty: f.decimal("qty", r.qty)?,
            priority_kept: f.get("priority_kept", r.priority_kept)?,
        },
        EventTag::BookDelta => DecodedKind::BookDelta {
            side: f.get("side", r.side)?,
            price: f.decimal("price", r.price)?,
            qty: f.decimal("qty", r.qty)?,
        },
        EventTag::TopOfBook => DecodedKind::TopOfBook {
            bid: f.level(("bid_price", r.bid_price), ("bid_qty", r.bid_qty))?,
            ask: f.level(("ask_price", r.ask_price), ("ask_qty", r.ask_qty))?,
        },
    };
    Ok(DecodedEvent {
        seq: u64::try_from(r.seq).map_err(|_| AvroError::field("seq", "negative"))?,
        ts: r.ts,
        symbol: name_of("symbol", r.symbol, Symbol::new)?,
        source_partition: r.source_partition,
        source_offset: r.source_offset,
        kind,
    })
}

/// Reads the fields an event kind requires, naming the kind when one is missing.
struct Need(EventTag);

impl Need {
    fn get<T>(&self, field: &'static str, v: Option<T>) -> Result<T, AvroError> {
        v.ok_or_else(|| AvroError::field(field, format!("required on {}", self.0.name())))
    }

    fn order_id(&self, field: &'static str, v: Option<&str>) -> Result<OrderId, AvroError> {
        name_of(field, self.get(field, v)?, OrderId::new)
    }

    fn account(&self, field: &'static str, v: Option<&str>) -> Result<Account, AvroError> {
        name_of(field, self.get(field, v)?, Account::new)
    }

    fn decimal(&self, field: &'static str, v: Option<&str>) -> Result<Decimal, AvroError> {
        decimal_of(field, self.get(field, v)?)
    }

    /// Both or neither of a level's price and quantity.
    fn level(
        &self,
        (pf, p): (&'static str, Option<&str>),
        (qf, q): (&'static str, Option<&str>),
    ) -> Result<Option<DecimalLevel>, AvroError> {
        if p.is_none() && q.is_none() {
            return Ok(None);
        }
        Ok(Some(DecimalLevel {
            price: self.decimal(pf, p)?,
            qty: self.decimal(qf, q)?,
        }))
    }
}
