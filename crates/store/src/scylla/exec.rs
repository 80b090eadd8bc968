//! Running statements: the store's own runtime ([`OwnedRuntime`]), writes as futures driven
//! with bounded concurrency ([`run_concurrently`]), reads converting every row ([`select`],
//! [`select_paged`]).

use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::Poll;

use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::response::PagingState;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use tokio::runtime::Runtime;

use crate::{Result, StoreError};

/// A runtime dropped without blocking: dropping a runtime inside another one would panic.
pub(crate) struct OwnedRuntime(pub(crate) Option<Runtime>);

impl OwnedRuntime {
    /// Runs `fut` to completion on this runtime. Inside another tokio runtime, where blocking the
    /// current thread on a runtime panics, on a thread of its own.
    pub(crate) fn block_on<F>(&self, fut: F) -> Result<F::Output>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(runtime) = &self.0 else {
            return Err(StoreError::Other(
                "the Scylla runtime is shut down".to_owned(),
            ));
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(runtime.block_on(fut));
        }
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("tradestream-scylla-call".to_owned())
                .spawn_scoped(scope, || runtime.block_on(fut))
                .map_err(|source| StoreError::Io {
                    context: "cannot start a Scylla call thread".to_owned(),
                    source,
                })?
                .join()
                .map_err(|_| StoreError::Other("a Scylla call thread panicked".to_owned()))
        })
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

pub(crate) type WriteFuture<'a> = BoxFuture<'a, ()>;

/// A boxed, sendable future of a store result (what the read walks and row moves take).
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// One write, as a future.
pub(crate) fn exec<'a>(
    session: &'a Session,
    stmt: &'a PreparedStatement,
    table: &'static str,
    values: impl SerializeRow + Send + 'a,
) -> WriteFuture<'a> {
    Box::pin(async move {
        session
            .execute_unpaged(stmt, values)
            .await
            .map(drop)
            .map_err(scylla_err(format!("write {table}")))
    })
}

/// Drives `writes` with at most `limit` in flight; the first error wins (the rest are dropped:
/// every write is idempotent, so whether they landed does not matter).
pub(crate) async fn run_concurrently(writes: Vec<WriteFuture<'_>>, limit: usize) -> Result<()> {
    let mut pending = writes.into_iter();
    let mut in_flight: Vec<WriteFuture<'_>> = Vec::with_capacity(limit.min(pending.len()));
    std::future::poll_fn(|cx| {
        loop {
            while in_flight.len() < limit {
                match pending.next() {
                    Some(write) => in_flight.push(write),
                    None => break,
                }
            }
            if in_flight.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let before = in_flight.len();
            let mut i = 0;
            while i < in_flight.len() {
                match in_flight[i].as_mut().poll(cx) {
                    Poll::Ready(Ok(())) => drop(in_flight.swap_remove(i)),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => i += 1,
                }
            }
            if in_flight.len() == before {
                return Poll::Pending;
            }
        }
    })
    .await
}

/// Runs a prepared `SELECT` and converts every row.
pub(crate) async fn select<R, T>(
    session: &Session,
    stmt: &PreparedStatement,
    values: impl SerializeRow,
    table: &'static str,
    convert: impl Fn(R) -> Result<T>,
) -> Result<Vec<T>>
where
    R: for<'f> DeserializeRow<'f, 'f>,
{
    let context = || format!("read {table}");
    let rows = session
        .execute_unpaged(stmt, values)
        .await
        .map_err(scylla_err(context()))?
        .into_rows_result()
        .map_err(scylla_err(context()))?;
    let mut out = Vec::with_capacity(rows.rows_num());
    for row in rows.rows::<R>().map_err(scylla_err(context()))? {
        out.push(convert(row.map_err(scylla_err(context()))?)?);
    }
    Ok(out)
}

/// Like [`select`], a page at a time: for partitions whose tombstones may outnumber their rows
/// (`open_candles`), which an unpaged read would have to scan in one request.
pub(crate) async fn select_paged<R, T>(
    session: &Session,
    stmt: &PreparedStatement,
    values: impl SerializeRow,
    table: &'static str,
    convert: impl Fn(R) -> Result<T>,
) -> Result<Vec<T>>
where
    R: for<'f> DeserializeRow<'f, 'f>,
{
    let context = || format!("read {table}");
    let mut out = Vec::new();
    let mut paging_state = PagingState::start();
    loop {
        let (result, paging) = session
            .execute_single_page(stmt, &values, paging_state)
            .await
            .map_err(scylla_err(context()))?;
        let rows = result.into_rows_result().map_err(scylla_err(context()))?;
        for row in rows.rows::<R>().map_err(scylla_err(context()))? {
            out.push(convert(row.map_err(scylla_err(context()))?)?);
        }
        match paging.into_paging_control_flow() {
            ControlFlow::Break(()) => return Ok(out),
            ControlFlow::Continue(next) => paging_state = next,
        }
    }
}

/// Wraps a driver error `E` with what the store was doing; the driver's error stays the source.
pub(crate) fn scylla_err<E>(context: impl fmt::Display) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StoreError::Scylla {
        context: context.to_string(),
        source: Box::new(e),
    }
}

/// A `LIMIT` value: CQL takes a positive int.
pub(crate) fn cql_limit(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX).max(1)
}

#[cfg(test)]
mod tests;
