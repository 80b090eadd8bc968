//! [`write_batch`]: one consumed batch as concurrent idempotent writes, then its offsets.

use std::collections::BTreeSet;

use scylla::client::session::Session;

use super::MAX_IN_FLIGHT;
use super::buckets::{candle_period, day_bucket};
use super::exec::{WriteFuture, exec, run_concurrently};
use super::rows::{
    AccountTradeW, CandleByPeriodW, CandleValuesW, DayW, NotificationW, OffsetW, OpenCandleKeyW,
    OrderW, PeriodW, TopW, TradeBySymbolW,
};
use super::statements::Statements;
use crate::{Batch, OrderStateRow, Result};

/// Writes the rows of `batch` concurrently (at most [`MAX_IN_FLIGHT`] at once), then, only when
/// every one succeeded, its offsets. A crash in between leaves rows that the replay from the old
/// offsets rewrites identically.
pub(crate) async fn write_batch(session: &Session, st: &Statements, batch: &Batch) -> Result<()> {
    let mut rows: Vec<WriteFuture<'_>> = Vec::with_capacity(
        batch.trades.len() * 3
            + batch.orders.len()
            + batch.candles.len() * 2
            + batch.tops.len()
            + batch.notifications.len(),
    );
    // Index rows: one per distinct bucket of the batch (each is the same row, whoever writes it).
    let mut symbol_days = BTreeSet::new();
    let mut account_days = BTreeSet::new();
    let mut periods = BTreeSet::new();
    let mut notification_days = BTreeSet::new();
    for t in &batch.trades {
        rows.push(exec(
            session,
            &st.insert_trade_by_symbol,
            "trades_by_symbol",
            TradeBySymbolW::new(t),
        ));
        let day = day_bucket(t.ts_ms);
        if symbol_days.insert((t.symbol.as_str(), day)) {
            rows.push(exec(
                session,
                &st.insert_trade_day,
                "trade_days",
                DayW::new(&t.symbol, day, t.seq),
            ));
        }
        for (account, role) in t.account_roles() {
            rows.push(exec(
                session,
                &st.insert_account_trade,
                "trades_by_account_day",
                AccountTradeW::new(t, account, role),
            ));
            if account_days.insert((account, day)) {
                rows.push(exec(
                    session,
                    &st.insert_account_trade_day,
                    "account_trade_days",
                    DayW::new(account, day, t.seq),
                ));
            }
        }
    }
    for o in &batch.orders {
        rows.push(upsert_order(session, st, o));
    }
    for c in &batch.candles {
        rows.push(exec(
            session,
            &st.upsert_candle,
            "candles_by_period",
            CandleByPeriodW::new(c),
        ));
        if periods.insert((
            c.symbol.as_str(),
            c.interval,
            candle_period(c.interval, c.bucket_start_ms),
        )) {
            rows.push(exec(
                session,
                &st.insert_candle_period,
                "candle_periods",
                PeriodW::new(c),
            ));
        }
        // The open-candle copy, at the same timestamp: on a tie the closing DELETE wins.
        rows.push(if c.closed {
            exec(
                session,
                &st.delete_open_candle,
                "open_candles",
                OpenCandleKeyW::new(c),
            )
        } else {
            exec(
                session,
                &st.upsert_open_candle,
                "open_candles",
                CandleValuesW::new(c),
            )
        });
    }
    for t in &batch.tops {
        rows.push(exec(session, &st.upsert_top, "top_of_book", TopW::new(t)));
    }
    for n in &batch.notifications {
        rows.push(exec(
            session,
            &st.insert_notification,
            "notifications_by_account_day",
            NotificationW::new(n),
        ));
        let day = day_bucket(n.ts_ms);
        if notification_days.insert((n.account.as_str(), day)) {
            rows.push(exec(
                session,
                &st.insert_notification_day,
                "account_notification_days",
                DayW::new(&n.account, day, n.seq),
            ));
        }
    }
    run_concurrently(rows, MAX_IN_FLIGHT).await?;
    // Only now that every row is acknowledged: the positions they cover.
    let offsets = batch
        .offsets
        .iter()
        .map(|o| {
            exec(
                session,
                &st.upsert_offset,
                "consumer_offsets",
                OffsetW::new(o),
            )
        })
        .collect();
    run_concurrently(offsets, MAX_IN_FLIGHT).await
}

/// The write of one order state (`USING TIMESTAMP` its seq).
pub(crate) fn upsert_order<'a>(
    session: &'a Session,
    st: &'a Statements,
    o: &'a OrderStateRow,
) -> WriteFuture<'a> {
    exec(
        session,
        &st.upsert_order,
        "orders_by_symbol",
        OrderW::new(o),
    )
}
