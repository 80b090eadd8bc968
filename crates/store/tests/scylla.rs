//! The backend suite on Scylla/Cassandra, when `SCYLLA_URI` names a cluster
//! (e.g. `scylla://127.0.0.1:9042/tradestream_test`). Each case gets a keyspace of its own,
//! named after the URI's keyspace and dropped at the end. Plus what only this backend does by
//! itself: moving the rows of the old `orders` table on connect.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tradestream_store::scylla::ScyllaStore;
use tradestream_store::{OrderStatus, Store, StoreUri};

/// The cluster's contact points and a keyspace name unique to `case` and this run, or `None`
/// (the suite is skipped, said loudly once) when `SCYLLA_URI` is not set.
fn cluster(case: &str) -> Option<(Vec<String>, String)> {
    let Some(uri) = std::env::var("SCYLLA_URI").ok().filter(|u| !u.is_empty()) else {
        // Under CI=true a missing cluster fails every case; elsewhere the suite is skipped,
        // said loudly once.
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            tradestream_testkit::service("SCYLLA_URI", "the Scylla/Cassandra store suite");
        });
        assert!(
            !tradestream_testkit::in_ci(),
            "the Scylla/Cassandra store suite needs SCYLLA_URI under CI=true"
        );
        return None;
    };
    let StoreUri::Scylla { nodes, keyspace } = uri.parse().unwrap() else {
        panic!("SCYLLA_URI must be a scylla:// URI, got {uri:?}");
    };
    // Unique per case and run; at most 48 characters.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = format!("_{:x}_{}", nanos & 0xffff_ffff, std::process::id());
    let mut case_ks: String = format!("{keyspace}_{case}");
    case_ks.truncate(48 - tag.len());
    case_ks.push_str(&tag);
    Some((nodes, case_ks))
}

/// Connects to `keyspace` (creating and migrating it), runs `body`, drops the keyspace.
fn with_keyspace(nodes: &[String], keyspace: &str, body: impl FnOnce(&mut ScyllaStore)) {
    let mut store = ScyllaStore::connect(nodes, keyspace).unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut store)));
    if let Err(e) = store.drop_keyspace() {
        eprintln!("could not drop keyspace {keyspace}: {e}");
    }
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

fn with_store(case: &str, body: &mut dyn FnMut(&mut dyn Store)) {
    if let Some((nodes, keyspace)) = cluster(case) {
        with_keyspace(&nodes, &keyspace, |store| body(store));
    }
}

tradestream_store::store_suite!(with_store);

/// Runs `f` with a session of the test's own, on a runtime of its own.
fn with_session<T>(nodes: &[String], f: impl AsyncFnOnce(&Session) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let session = SessionBuilder::new()
            .known_nodes(nodes)
            .build()
            .await
            .unwrap();
        f(&session).await
    })
}

/// Runs CQL statements, in order.
fn run_cql(nodes: &[String], statements: &[String]) {
    with_session(nodes, async |session| {
        for cql in statements {
            session
                .query_unpaged(cql.as_str(), ())
                .await
                .unwrap_or_else(|e| panic!("{cql}: {e}"));
        }
    });
}

/// Whether `keyspace` has a table `table`.
fn has_table(nodes: &[String], keyspace: &str, table: &str) -> bool {
    with_session(nodes, async |session| {
        session
            .query_unpaged(
                "SELECT table_name FROM system_schema.tables \
                 WHERE keyspace_name = ? AND table_name = ?",
                (keyspace, table),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .rows_num()
            > 0
    })
}

#[test]
fn connecting_to_a_keyspace_with_the_old_order_table_moves_its_rows_and_drops_it() {
    let Some((nodes, ks)) = cluster("legacy_orders") else {
        return;
    };
    // A keyspace as the code before `orders_by_symbol` left it: `orders`, keyed by order id.
    let insert = |id: &str, symbol: &str, status: &str, filled: &str, seq: i64| {
        format!(
            "INSERT INTO {ks}.orders (order_id, account, symbol, side, status, price, qty, \
             filled_qty, avg_price, notional, updated_ts_ms, source_partition, seq) \
             VALUES ('{id}', 'acct-1', '{symbol}', 'buy', '{status}', 60000.50, 1.250, \
             {filled}, null, 0, {seq}, 3, {seq}) USING TIMESTAMP {seq}"
        )
    };
    run_cql(
        &nodes,
        &[
            format!(
                "CREATE KEYSPACE {ks} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            format!(
                "CREATE TABLE {ks}.orders (order_id text, account text, symbol text, \
                 side text, status text, price decimal, qty decimal, filled_qty decimal, \
                 avg_price decimal, notional decimal, updated_ts_ms bigint, \
                 source_partition int, seq bigint, PRIMARY KEY (order_id))"
            ),
            insert("o-1", "BTC-USD", "new", "0", 7),
            insert("o-2", "ETH-USD", "cancelled", "0.250", 8),
        ],
    );
    with_keyspace(&nodes, &ks, |store| {
        let o1 = store.order("BTC-USD", "o-1").unwrap().expect("o-1 moved");
        assert_eq!(
            (o1.status, o1.price.map(|p| p.to_string()), o1.seq),
            (OrderStatus::New, Some("60000.50".to_owned()), 7)
        );
        let o2 = store.order("ETH-USD", "o-2").unwrap().expect("o-2 moved");
        assert_eq!(
            (o2.status, o2.filled_qty.to_string()),
            (OrderStatus::Cancelled, "0.250".to_owned())
        );
        assert_eq!(store.order("BTC-USD", "o-2").unwrap(), None);
        assert_eq!(store.counts().unwrap().orders, 2);
        assert!(
            !has_table(&nodes, &ks, "orders"),
            "the old table is dropped once its rows are moved"
        );
        // Migrating again is harmless.
        store.migrate().unwrap();
        assert_eq!(store.counts().unwrap().orders, 2);
    });
}
