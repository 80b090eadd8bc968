//! Engine events (`engine_event.avsc`) as written: [`encode_event`], with the record shape
//! ([`EventRecord`]) that [`decode_event`](super::decode_event) reads back.

use tradestream_engine::{
    Decimal, Event, EventKind, Instrument, Instruments, OrderType, Price, Qty, Request, Side, Tif,
};

use super::binary::{
    AvroEnum, Reader, avro_enum, put_bool, put_decimal, put_enum, put_long, put_number, put_opt,
    put_str, read_enum,
};
use super::{AvroError, Framing, RecordType};

/// Where an output event came from and its place in the output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Provenance {
    /// The input (`orders`) partition of the command that caused the event.
    pub source_partition: i32,
    /// That command's offset.
    pub source_offset: i64,
    /// The output sequence number: contiguous per input partition across all output topics,
    /// assigned by the worker (not the engine's own counter).
    pub seq: u64,
}

/// `EventKind` of `engine_event.avsc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EventTag {
    Accepted,
    Rejected,
    Trade,
    Cancelled,
    Replaced,
    Expired,
    BookDelta,
    TopOfBook,
}

impl EventTag {
    /// The schema's symbol.
    pub(super) const fn name(self) -> &'static str {
        match self {
            EventTag::Accepted => "accepted",
            EventTag::Rejected => "rejected",
            EventTag::Trade => "trade",
            EventTag::Cancelled => "cancelled",
            EventTag::Replaced => "replaced",
            EventTag::Expired => "expired",
            EventTag::BookDelta => "book_delta",
            EventTag::TopOfBook => "top_of_book",
        }
    }
}

avro_enum!(EventTag {
    EventTag::Accepted,
    EventTag::Rejected,
    EventTag::Trade,
    EventTag::Cancelled,
    EventTag::Replaced,
    EventTag::Expired,
    EventTag::BookDelta,
    EventTag::TopOfBook,
});

/// `engine_event.avsc`'s top-level field names, in order: what this file writes and reads (the
/// tests compare them with the parsed schema).
#[cfg(test)]
pub(super) const EVENT_FIELDS: [&str; 31] = [
    "event",
    "seq",
    "ts",
    "symbol",
    "source_partition",
    "source_offset",
    "order_id",
    "account",
    "side",
    "order_type",
    "tif",
    "price",
    "qty",
    "post_only",
    "request",
    "reason",
    "detail",
    "maker_order_id",
    "maker_account",
    "maker_leaves",
    "taker_order_id",
    "taker_account",
    "taker_side",
    "taker_leaves",
    "old_price",
    "old_qty",
    "priority_kept",
    "bid_price",
    "bid_qty",
    "ask_price",
    "ask_qty",
];

/// `EngineEvent`, field for field in schema order. Numbers are `N`: [`Num`] when writing (no
/// text is built until it is written), the borrowed text when reading.
#[derive(Debug, Clone, Copy)]
pub(super) struct EventRecord<'a, N> {
    pub(super) event: EventTag,
    pub(super) seq: i64,
    pub(super) ts: i64,
    pub(super) symbol: &'a str,
    pub(super) source_partition: i32,
    pub(super) source_offset: i64,
    pub(super) order_id: Option<&'a str>,
    pub(super) account: Option<&'a str>,
    pub(super) side: Option<Side>,
    pub(super) order_type: Option<OrderType>,
    pub(super) tif: Option<Tif>,
    pub(super) price: Option<N>,
    pub(super) qty: Option<N>,
    pub(super) post_only: Option<bool>,
    pub(super) request: Option<Request>,
    pub(super) reason: Option<&'a str>,
    pub(super) detail: Option<&'a str>,
    pub(super) maker_order_id: Option<&'a str>,
    pub(super) maker_account: Option<&'a str>,
    pub(super) maker_leaves: Option<N>,
    pub(super) taker_order_id: Option<&'a str>,
    pub(super) taker_account: Option<&'a str>,
    pub(super) taker_side: Option<Side>,
    pub(super) taker_leaves: Option<N>,
    pub(super) old_price: Option<N>,
    pub(super) old_qty: Option<N>,
    pub(super) priority_kept: Option<bool>,
    pub(super) bid_price: Option<N>,
    pub(super) bid_qty: Option<N>,
    pub(super) ask_price: Option<N>,
    pub(super) ask_qty: Option<N>,
}

impl<'a, N> EventRecord<'a, N> {
    /// The common fields, every per-kind field null.
    fn new(event: EventTag, seq: i64, ts: i64, symbol: &'a str, p: Provenance) -> Self {
        EventRecord {
            event,
            seq,
            ts,
            symbol,
            source_partition: p.source_partition,
            source_offset: p.source_offset,
            order_id: None,
            account: None,
            side: None,
            order_type: None,
            tif: None,
            price: None,
            qty: None,
            post_only: None,
            request: None,
            reason: None,
            detail: None,
            maker_order_id: None,
            maker_account: None,
            maker_leaves: None,
            taker_order_id: None,
            taker_account: None,
            taker_side: None,
            taker_leaves: None,
            old_price: None,
            old_qty: None,
            priority_kept: None,
            bid_price: None,
            bid_qty: None,
            ask_price: None,
            ask_qty: None,
        }
    }
}

impl EventRecord<'_, Num> {
    fn write(&self, o: &mut Vec<u8>) {
        put_enum(o, self.event);
        put_long(o, self.seq);
        put_long(o, self.ts);
        put_str(o, self.symbol);
        put_long(o, i64::from(self.source_partition));
        put_long(o, self.source_offset);
        put_opt(o, self.order_id, put_str);
        put_opt(o, self.account, put_str);
        put_opt(o, self.side, put_enum);
        put_opt(o, self.order_type, put_enum);
        put_opt(o, self.tif, put_enum);
        put_opt(o, self.price, put_num);
        put_opt(o, self.qty, put_num);
        put_opt(o, self.post_only, put_bool);
        put_opt(o, self.request, put_enum);
        put_opt(o, self.reason, put_str);
        put_opt(o, self.detail, put_str);
        put_opt(o, self.maker_order_id, put_str);
        put_opt(o, self.maker_account, put_str);
        put_opt(o, self.maker_leaves, put_num);
        put_opt(o, self.taker_order_id, put_str);
        put_opt(o, self.taker_account, put_str);
        put_opt(o, self.taker_side, put_enum);
        put_opt(o, self.taker_leaves, put_num);
        put_opt(o, self.old_price, put_num);
        put_opt(o, self.old_qty, put_num);
        put_opt(o, self.priority_kept, put_bool);
        put_opt(o, self.bid_price, put_num);
        put_opt(o, self.bid_qty, put_num);
        put_opt(o, self.ask_price, put_num);
        put_opt(o, self.ask_qty, put_num);
    }
}

impl<'a> EventRecord<'a, &'a str> {
    pub(super) fn read(body: &'a [u8]) -> Result<Self, AvroError> {
        let mut r = Reader(body);
        let event = read_enum(&mut r, "event")?;
        let rec = EventRecord {
            event,
            seq: r.long("seq")?,
            ts: r.long("ts")?,
            symbol: r.str("symbol")?,
            source_partition: r.int("source_partition")?,
            source_offset: r.long("source_offset")?,
            order_id: r.opt("order_id", Reader::str)?,
            account: r.opt("account", Reader::str)?,
            side: r.opt("side", read_enum)?,
            order_type: r.opt("order_type", read_enum)?,
            tif: r.opt("tif", read_enum)?,
            price: r.opt("price", Reader::str)?,
            qty: r.opt("qty", Reader::str)?,
            post_only: r.opt("post_only", Reader::boolean)?,
            request: r.opt("request", read_enum)?,
            reason: r.opt("reason", Reader::str)?,
            detail: r.opt("detail", Reader::str)?,
            maker_order_id: r.opt("maker_order_id", Reader::str)?,
            maker_account: r.opt("maker_account", Reader::str)?,
            maker_leaves: r.opt("maker_leaves", Reader::str)?,
            taker_order_id: r.opt("taker_order_id", Reader::str)?,
            taker_account: r.opt("taker_account", Reader::str)?,
            taker_side: r.opt("taker_side", read_enum)?,
            taker_leaves: r.opt("taker_leaves", Reader::str)?,
            old_price: r.opt("old_price", Reader::str)?,
            old_qty: r.opt("old_qty", Reader::str)?,
            priority_kept: r.opt("priority_kept", Reader::boolean)?,
            bid_price: r.opt("bid_price", Reader::str)?,
            bid_qty: r.opt("bid_qty", Reader::str)?,
            ask_price: r.opt("ask_price", Reader::str)?,
            ask_qty: r.opt("ask_qty", Reader::str)?,
        };
        r.finish()?;
        Ok(rec)
    }
}

/// A price or quantity to write: a decimal in the instrument's units, or the raw integer when
/// the symbol is not configured (as the JSON contract does).
#[derive(Debug, Clone, Copy)]
pub(super) enum Num {
    Decimal(Decimal),
    Ticks(i64),
    Lots(u64),
}

pub(super) fn put_num(out: &mut Vec<u8>, n: Num) {
    match n {
        Num::Decimal(d) => put_decimal(out, d),
        Num::Ticks(t) => put_number(out, t < 0, t.unsigned_abs(), 0),
        Num::Lots(l) => put_number(out, false, l, 0),
    }
}

/// Converts ticks and lots with the instrument's units, if it is configured.
struct Units<'a>(Option<&'a Instrument>);

impl Units<'_> {
    fn price(&self, p: Price) -> Option<Num> {
        Some(match self.0 {
            Some(i) => Num::Decimal(i.price_decimal(p)),
            None => Num::Ticks(p.0),
        })
    }

    fn qty(&self, q: Qty) -> Option<Num> {
        Some(match self.0 {
            Some(i) => Num::Decimal(i.qty_decimal(q)),
            None => Num::Lots(q.0),
        })
    }
}

/// Appends one event, framed, to `out`. `provenance` supplies the output sequence number and
/// the input position; prices and quantities are formatted as [`json::encode_event`] does.
///
/// [`json::encode_event`]: crate::json::encode_event
pub fn encode_event(
    instruments: &Instruments,
    event: &Event,
    provenance: Provenance,
    framing: Framing,
    out: &mut Vec<u8>,
) {
    let u = Units(instruments.get(&event.symbol));
    let base = |tag| {
        // Sequence numbers stay far below 2^63; the cast keeps the bits either way.
        let seq = provenance.seq as i64;
        EventRecord::new(tag, seq, event.ts, event.symbol.as_str(), provenance)
    };
    let rec = match &event.kind {
        EventKind::Accepted {
            order_id,
            account,
            side,
            order_type,
            tif,
            price,
            qty,
            post_only,
        } => EventRecord {
            order_id: Some(order_id.as_str()),
            account: Some(account.as_str()),
            side: Some(*side),
            order_type: Some(*order_type),
            tif: Some(*tif),
            price: price.and_then(|p| u.price(p)),
            qty: u.qty(*qty),
            post_only: Some(*post_only),
            ..base(EventTag::Accepted)
        },
        EventKind::Rejected {
            order_id,
            account,
            request,
            reason,
        } => EventRecord {
            order_id: Some(order_id.as_str()),
            account: Some(account.as_str()),
            request: Some(*request),
            reason: Some(reason.code()),
            detail: reason.detail(),
            ..base(EventTag::Rejected)
        },
        EventKind::Trade {
            price,
            qty,
            maker_order_id,
            maker_account,
            maker_leaves,
            taker_order_id,
            taker_account,
            taker_side,
            taker_leaves,
        } => EventRecord {
            price: u.price(*price),
            qty: u.qty(*qty),
            maker_order_id: Some(maker_order_id.as_str()),
            maker_account: Some(maker_account.as_str()),
            maker_leaves: u.qty(*maker_leaves),
            taker_order_id: Some(taker_order_id.as_str()),
            taker_account: Some(taker_account.as_str()),
            taker_side: Some(*taker_side),
            taker_leaves: u.qty(*taker_leaves),
            ..base(EventTag::Trade)
        },
        EventKind::Cancelled {
            order_id,
            account,
            qty,
        } => EventRecord {
            order_id: Some(order_id.as_str()),
            account: Some(account.as_str()),
            qty: u.qty(*qty),
            ..base(EventTag::Cancelled)
        },
        EventKind::Expired {
            order_id,
            account,
            qty,
        } => EventRecord {
            order_id: Some(order_id.as_str()),
            account: Some(account.as_str()),
            qty: u.qty(*qty),
            ..base(EventTag::Expired)
        },
        EventKind::Replaced {
            order_id,
            account,
            side,
            old_price,
            price,
            old_qty,
            qty,
            priority_kept,
        } => EventRecord {
            order_id: Some(order_id.as_str()),
            account: Some(account.as_str()),
            side: Some(*side),
            old_price: u.price(*old_price),
            price: u.price(*price),
            old_qty: u.qty(*old_qty),
            qty: u.qty(*qty),
            priority_kept: Some(*priority_kept),
            ..base(EventTag::Replaced)
        },
        EventKind::BookDelta { side, price, qty } => EventRecord {
            side: Some(*side),
            price: u.price(*price),
            qty: u.qty(*qty),
            ..base(EventTag::BookDelta)
        },
        EventKind::TopOfBook { bid, ask } => EventRecord {
            bid_price: bid.and_then(|l| u.price(l.price)),
            bid_qty: bid.and_then(|l| u.qty(l.qty)),
            ask_price: ask.and_then(|l| u.price(l.price)),
            ask_qty: ask.and_then(|l| u.qty(l.qty)),
            ..base(EventTag::TopOfBook)
        },
    };
    RecordType::EngineEvent.header(framing, out);
    rec.write(out);
}
