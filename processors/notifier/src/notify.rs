//! Notifications: what each execution tells the accounts it concerns.
//!
//! [`notifications`] maps one event of the `executions` topic to the [`NotificationRow`]s it
//! produces: pure, no state, no I/O. The worker stores them and produces them to the
//! `notifications` topic keyed by account.
//!
//! ## Rules
//! - `accepted` → one `accepted` notification to the order's account.
//! - `trade` → one `fill` notification per side: the maker's account (its side is the opposite
//!   of `taker_side`) and the taker's, maker first, each saying what its order bought or sold,
//!   at what price, and what is left.
//! - **Self-match**: when maker and taker belong to the same account, the two notifications
//!   would share the row key `(account, ts_ms, source_partition, seq)` and one would overwrite
//!   the other. So a self-match is *one* combined `fill` notification for the taker's order id,
//!   whose text names both orders and what each has left.
//! - `cancelled`, `expired`, `replaced` → one notification each to the order's account.
//! - `rejected` → one `rejected` notification to the event's `account`, with the reason, the
//!   detail of a malformed command, and the refused request unless it was a new order (see
//!   [`rejection`]). The engine decides the account: always the sender of the refused command
//!   (a new order's own, also for a duplicate order id; the account a cancel or replace
//!   carried, also when it is refused `not_owner` — the owner of the order is not told; the
//!   account a malformed command carried). The notifier never looks an order id up itself,
//!   which could tell the wrong account.
//! - `rejected` with an empty `account` → **nothing**: nobody can be told (a malformed command
//!   without a readable account, or a record written before the engine named the sender of
//!   every refused command). [`NotificationRules`] counts these as unaddressed for the worker's
//!   metrics.
//! - `book_delta` and `top_of_book` never appear on `executions`: nothing.
//!
//! Every row carries the execution's `source_partition`, `seq` (the `executions` topic's) and
//! event time, so `(account, source_partition, seq)` identifies it
//! ([`NotificationRow::idempotency_key`]) and a replay rewrites the same rows. Never
//! `(source_partition, seq)` alone: the maker's and the taker's fills share the trade's seq.

use tradestream_codec::avro::{DecodedEvent, DecodedKind};
use tradestream_engine::{Decimal, OrderType, Request, Side};
use tradestream_store::model::NotificationRow;

/// Kind of the notification of an accepted order.
pub const ACCEPTED: &str = "accepted";
/// Kind of the notification of a fill.
pub const FILL: &str = "fill";
/// Kind of the notification of a cancel.
pub const CANCELLED: &str = "cancelled";
/// Kind of the notification of a replace.
pub const REPLACED: &str = "replaced";
/// Kind of the notification of an expiry.
pub const EXPIRED: &str = "expired";
/// Kind of the notification of a rejection.
pub const REJECTED: &str = "rejected";

/// The notifications of one execution (none for a rejection nobody can be told about: see the
/// module documentation).
pub fn notifications(ev: &DecodedEvent) -> Vec<NotificationRow> {
    let row = |account: &str, kind: &str, order_id: &str, text: String| NotificationRow {
        account: account.to_owned(),
        source_partition: ev.source_partition,
        // Seqs stay far below 2^63; saturate rather than wrap.
        seq: i64::try_from(ev.seq).unwrap_or(i64::MAX),
        ts_ms: ev.ts,
        kind: kind.to_owned(),
        order_id: order_id.to_owned(),
        symbol: ev.symbol.to_string(),
        text,
    };
    let symbol = ev.symbol.as_str();
    match &ev.kind {
        DecodedKind::Accepted {
            order_id,
            account,
            side,
            order_type,
            tif,
            price,
            qty,
            post_only,
        } => {
            let at = match (order_type, price) {
                (OrderType::Limit, Some(p)) => format!("at {p}"),
                _ => "at market".to_owned(),
            };
            let flags = if *post_only {
                format!("{}, post-only", tif.as_str())
            } else {
                tif.as_str().to_owned()
            };
            let text = format!("accepted: {side} {qty} {symbol} {at} ({flags})");
            vec![row(account.as_str(), ACCEPTED, order_id.as_str(), text)]
        }
        DecodedKind::Trade {
            price,
            qty,
            maker_order_id,
            maker_account,
            maker_leaves,
            taker_order_id,
            taker_account,
            taker_side,
            taker_leaves,
        } => {
            if maker_account == taker_account {
                let (m, t) = (maker_order_id.as_str(), taker_order_id.as_str());
                let (verb, dir) = match taker_side {
                    Side::Buy => ("bought", "from"),
                    Side::Sell => ("sold", "to"),
                };
                let text = format!(
                    "self-trade: order {t} {verb} {qty} {symbol} at {price} {dir} order {m} \
                     ({t}: {}; {m}: {})",
                    left(*taker_leaves),
                    left(*maker_leaves),
                );
                return vec![row(taker_account.as_str(), FILL, t, text)];
            }
            let fill = |side: Side, leaves: Decimal| {
                format!(
                    "{} {qty} {symbol} at {price} ({})",
                    past_tense(side),
                    left(leaves)
                )
            };
            vec![
                row(
                    maker_account.as_str(),
                    FILL,
                    maker_order_id.as_str(),
                    fill(taker_side.opposite(), *maker_leaves),
                ),
                row(
                    taker_account.as_str(),
                    FILL,
                    taker_order_id.as_str(),
                    fill(*taker_side, *taker_leaves),
                ),
            ]
        }
        DecodedKind::Cancelled {
            order_id,
            account,
            qty,
        } => {
            let text = format!("cancelled: {qty} {symbol} was open");
            vec![row(account.as_str(), CANCELLED, order_id.as_str(), text)]
        }
        DecodedKind::Expired {
            order_id,
            account,
            qty,
        } => {
            let text = format!("expired: {qty} {symbol} unfilled");
            vec![row(account.as_str(), EXPIRED, order_id.as_str(), text)]
        }
        DecodedKind::Replaced {
            order_id,
            account,
            side,
            old_price,
            price,
            old_qty,
            qty,
            priority_kept,
        } => {
            let priority = if *priority_kept { "kept" } else { "lost" };
            let text = format!(
                "replaced: {side} {symbol} at {old_price} -> {price}, open {old_qty} -> {qty} \
                 ({priority} queue priority)"
            );
            vec![row(account.as_str(), REPLACED, order_id.as_str(), text)]
        }
        DecodedKind::Rejected { account, .. } if !account.as_str().is_empty() => {
            rejection(ev, account.as_str()).into_iter().collect()
        }
        // A rejection without an account: the engine could not say whose the command was.
        DecodedKind::Rejected { .. }
        | DecodedKind::BookDelta { .. }
        | DecodedKind::TopOfBook { .. } => Vec::new(),
    }
}

/// The notification of a rejection to `account` (`None` for any other event); [`notifications`]
/// sends it to the event's own account. The text is `rejected: <reason>`, then `: <detail>`
/// when there is one, then the refused request when it was not a new order.
pub fn rejection(ev: &DecodedEvent, account: &str) -> Option<NotificationRow> {
    let DecodedKind::Rejected {
        order_id,
        request,
        reason,
        detail,
        ..
    } = &ev.kind
    else {
        return None;
    };
    let mut text = format!("rejected: {reason}");
    if let Some(detail) = detail {
        text.push_str(": ");
        text.push_str(detail);
    }
    if *request != Request::New {
        text.push_str(&format!(" ({} request)", request.as_str()));
    }
    Some(NotificationRow {
        account: account.to_owned(),
        source_partition: ev.source_partition,
        seq: i64::try_from(ev.seq).unwrap_or(i64::MAX),
        ts_ms: ev.ts,
        kind: REJECTED.to_owned(),
        order_id: order_id.to_string(),
        symbol: ev.symbol.to_string(),
        text,
    })
}

/// `filled` when nothing is left, else `<leaves> left`.
fn left(leaves: Decimal) -> String {
    if leaves.mantissa() == 0 {
        "filled".to_owned()
    } else {
        format!("{leaves} left")
    }
}

fn past_tense(side: Side) -> &'static str {
    match side {
        Side::Buy => "bought",
        Side::Sell => "sold",
    }
}

/// [`notifications`] with a count of the executions nobody could be told about (rejections
/// without an account), for the worker's metrics.
#[derive(Debug, Default)]
pub struct NotificationRules {
    unaddressed: u64,
}

impl NotificationRules {
    /// The rules with a zero count.
    pub fn new() -> Self {
        Self::default()
    }

    /// The notifications of one execution; counts a rejection without an account as unaddressed.
    pub fn notify(&mut self, ev: &DecodedEvent) -> Vec<NotificationRow> {
        let rows = notifications(ev);
        if rows.is_empty() && matches!(ev.kind, DecodedKind::Rejected { .. }) {
            self.unaddressed += 1;
        }
        rows
    }

    /// Rejections seen so far that had no account to tell.
    pub fn unaddressed(&self) -> u64 {
        self.unaddressed
    }
}

#[cfg(test)]
mod tests;
