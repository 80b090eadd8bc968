//! The backend suite on Scylla/Cassandra, when `SCYLLA_URI` names a cluster
//! (`. <(bash deploy/local/services env)` after `services up cassandra` sets it, with
//! `SCYLLA_USERNAME`/`SCYLLA_PASSWORD` and, when the node speaks TLS, `SCYLLA_TEST_CA_FILE`).
//! Each case gets a keyspace of its own, named after the URI's keyspace, created by
//! `migrate_keyspace` with NetworkTopologyStrategy in the node's data center and dropped at the
//! end. Plus what only this backend does: `store migrate` (replication, refusals, moving the rows
//! of replaced tables), the refusal to use a keyspace that is not migrated, logins, TLS.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;
use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tradestream_store::scylla::{
    KeyspaceChange, Replication, ScyllaOptions, ScyllaStore, Secret, TlsFiles,
};
use tradestream_store::suite::{self, T0};
use tradestream_store::{Interval, OrderStatus, Store, StoreError, StoreUri};

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

/// The options of the environment (the test node's login, from `services env`).
fn options() -> ScyllaOptions {
    ScyllaOptions::from_env().unwrap()
}

/// The data center of the node the test talks to (`datacenter1` on the services' node).
fn local_dc(nodes: &[String]) -> String {
    with_session(nodes, async |session| {
        let (dc,): (String,) = session
            .query_unpaged("SELECT data_center FROM system.local", ())
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .single_row()
            .unwrap();
        dc
    })
}

/// One replica in the node's data center.
fn replication(nodes: &[String]) -> Replication {
    format!("{}:1", local_dc(nodes)).parse().unwrap()
}

/// Migrates `keyspace` (creating it), runs `body`, drops the keyspace.
fn with_keyspace(nodes: &[String], keyspace: &str, body: impl FnOnce(&mut ScyllaStore)) {
    let (mut store, _) =
        ScyllaStore::migrate_keyspace(nodes, keyspace, &replication(nodes), &options()).unwrap();
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
        let mut builder = SessionBuilder::new().known_nodes(nodes);
        let options = options();
        if let (Some(user), Some(password)) = (options.username, options.password) {
            builder = builder.user(user, password.expose());
        }
        let session = builder.build().await.unwrap();
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

/// The replication map of `keyspace`, if it exists.
fn keyspace_replication(
    nodes: &[String],
    keyspace: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    with_session(nodes, async |session| {
        session
            .query_unpaged(
                "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
                (keyspace,),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .maybe_first_row::<(std::collections::BTreeMap<String, String>,)>()
            .unwrap()
            .map(|(r,)| r)
    })
}

#[test]
fn migrate_creates_the_keyspace_with_network_topology_strategy_in_the_given_data_centers() {
    let Some((nodes, ks)) = cluster("migrate_nts") else {
        return;
    };
    let dc = local_dc(&nodes);
    let replication = replication(&nodes);
    let (store, report) =
        ScyllaStore::migrate_keyspace(&nodes, &ks, &replication, &options()).unwrap();
    assert_eq!(report.keyspace, KeyspaceChange::Created);
    assert!(store.data_centers().unwrap().contains(&dc));
    let stored = keyspace_replication(&nodes, &ks).expect("keyspace created");
    assert!(
        stored["class"].ends_with("NetworkTopologyStrategy"),
        "{stored:?}"
    );
    assert_eq!(stored.get(&dc).map(String::as_str), Some("1"), "{stored:?}");
    for table in tradestream_store::scylla::TABLES {
        assert!(has_table(&nodes, &ks, table), "{table}");
    }
    drop(store);
    // Again: nothing to do.
    let (store, report) =
        ScyllaStore::migrate_keyspace(&nodes, &ks, &replication, &options()).unwrap();
    assert_eq!(report.keyspace, KeyspaceChange::Unchanged);
    assert_eq!(report.rows_moved, 0);
    store.drop_keyspace().unwrap();
}

#[test]
fn migrate_refuses_a_data_center_the_cluster_does_not_have() {
    let Some((nodes, ks)) = cluster("migrate_unknown_dc") else {
        return;
    };
    let dc = local_dc(&nodes);
    let replication: Replication = format!("{dc}:1,nowhere:3").parse().unwrap();
    match ScyllaStore::migrate_keyspace(&nodes, &ks, &replication, &options()) {
        Err(StoreError::Settings { message: msg, .. }) => {
            assert!(msg.contains("no data center nowhere"), "{msg}");
            assert!(msg.contains(&dc), "names the ones it has: {msg}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(keyspace_replication(&nodes, &ks), None, "nothing created");
    // No replication at all does not even parse.
    assert!("".parse::<Replication>().is_err());
}

#[test]
fn a_worker_refuses_a_keyspace_that_is_not_migrated() {
    let Some((nodes, ks)) = cluster("not_migrated") else {
        return;
    };
    match ScyllaStore::connect_with(&nodes, &ks, &options()) {
        Err(e @ StoreError::NotMigrated { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("does not exist"), "{msg}");
            assert!(msg.contains("tradestream store migrate"), "{msg}");
        }
        other => panic!("expected NotMigrated, got {other:?}"),
    }
    assert_eq!(
        keyspace_replication(&nodes, &ks),
        None,
        "a worker creates nothing"
    );
    // A keyspace with a table missing is not migrated either.
    with_keyspace(&nodes, &ks, |_| {
        run_cql(&nodes, &[format!("DROP TABLE {ks}.candle_periods")]);
        match ScyllaStore::connect_with(&nodes, &ks, &options()) {
            Err(StoreError::NotMigrated { detail, .. }) => {
                assert!(detail.contains("candle_periods"), "{detail}")
            }
            other => panic!("expected NotMigrated, got {other:?}"),
        }
    });
}

/// The error and every cause under it, one line (the driver's reason sits in a cause).
fn chain(e: &StoreError) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Connecting with `options` fails at the connection (not later), for a reason naming `why`.
fn refused(nodes: &[String], keyspace: &str, options: &ScyllaOptions, why: &[&str]) -> String {
    match ScyllaStore::connect_with(nodes, keyspace, options) {
        Ok(_) => panic!("connected with {options:?}: expected a refusal"),
        Err(e) => {
            let text = chain(&e);
            assert!(text.contains("connect to"), "{text}");
            assert!(
                why.iter()
                    .any(|w| text.to_ascii_lowercase().contains(&w.to_ascii_lowercase())),
                "the refusal names none of {why:?}: {text}"
            );
            eprintln!("refused, as it must be: {text}");
            text
        }
    }
}

/// The node requires a login (the services script starts it with PasswordAuthenticator): the
/// environment's login works, a wrong password and no login at all are refused.
#[test]
fn logins_take_the_password_from_the_environment_and_refuse_a_wrong_one() {
    let Some((nodes, ks)) = cluster("auth") else {
        return;
    };
    // Under CI=true a node without a login fails here, never passes by skipping.
    let Some(user) = tradestream_testkit::service(
        "SCYLLA_USERNAME",
        "the Scylla login case (deploy/local/services env exports the test node's login)",
    ) else {
        return;
    };
    let good = options();
    assert_eq!(good.username.as_deref(), Some(user.as_str()));
    assert!(
        good.password.is_some(),
        "SCYLLA_PASSWORD goes with SCYLLA_USERNAME"
    );
    with_keyspace(&nodes, &ks, |_| {
        ScyllaStore::connect_with(&nodes, &ks, &good).expect("the environment's login works");
        let wrong = ScyllaOptions {
            username: Some(user.clone()),
            password: Some(Secret::new("not-the-password")),
            ..good.clone()
        };
        let text = refused(
            &nodes,
            &ks,
            &wrong,
            &["password", "authenticat", "credentials"],
        );
        assert!(
            !text.contains("not-the-password"),
            "the password is not echoed: {text}"
        );
        let anonymous = ScyllaOptions {
            username: None,
            password: None,
            ..good.clone()
        };
        refused(&nodes, &ks, &anonymous, &["authenticat"]);
    });
}

/// TLS to the node (the services script turns it on unless `CASSANDRA_TLS=0`): with the CA that
/// signed the node's certificate every row type round-trips; with a CA that signed nothing of
/// the node's, the connection is refused.
#[test]
fn tls_connections_verify_the_node_against_the_given_ca() {
    let Some((nodes, ks)) = cluster("tls") else {
        return;
    };
    // Under CI=true a node without TLS fails here, never passes by skipping.
    let Some(ca) = tradestream_testkit::service(
        "SCYLLA_TEST_CA_FILE",
        "the Scylla TLS case (deploy/local/services starts Cassandra with TLS unless \
         CASSANDRA_TLS=0, and `env` exports the CA)",
    ) else {
        return;
    };
    let with_ca = |ca_file: PathBuf| ScyllaOptions {
        tls: Some(TlsFiles {
            ca_file,
            cert_file: None,
            key_file: None,
        }),
        ..options()
    };
    let tls = with_ca(ca.into());
    let (mut store, _) =
        ScyllaStore::migrate_keyspace(&nodes, &ks, &replication(&nodes), &tls).unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        suite::round_trip_every_row_type(&mut store);
        let stranger = with_ca(
            tradestream_testkit::repo_root().join("crates/store/tests/fixtures/unrelated-ca.pem"),
        );
        refused(&nodes, &ks, &stranger, &["certificate", "issuer", "tls"]);
    }));
    store.drop_keyspace().unwrap();
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

#[test]
fn migrate_moves_the_rows_of_replaced_tables_and_drops_them() {
    let Some((nodes, ks)) = cluster("legacy_tables") else {
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
            // The unbounded tables of 001 before 003.
            format!(
                "CREATE TABLE {ks}.trades_by_account (account text, ts_ms bigint, \
                 source_partition int, seq bigint, role text, symbol text, price decimal, \
                 qty decimal, maker_order_id text, maker_account text, taker_order_id text, \
                 taker_account text, taker_side text, \
                 PRIMARY KEY ((account), ts_ms, source_partition, seq)) \
                 WITH CLUSTERING ORDER BY (ts_ms DESC, source_partition ASC, seq DESC)"
            ),
            format!(
                "CREATE TABLE {ks}.candles (symbol text, interval text, bucket_start_ms bigint, \
                 open decimal, high decimal, low decimal, close decimal, volume decimal, \
                 turnover decimal, vwap decimal, trade_count bigint, closed boolean, \
                 source_partition int, seq bigint, \
                 PRIMARY KEY ((symbol, interval), bucket_start_ms)) \
                 WITH CLUSTERING ORDER BY (bucket_start_ms DESC)"
            ),
            format!(
                "CREATE TABLE {ks}.notifications_by_account (account text, ts_ms bigint, \
                 source_partition int, seq bigint, kind text, order_id text, symbol text, \
                 message text, PRIMARY KEY ((account), ts_ms, source_partition, seq)) \
                 WITH CLUSTERING ORDER BY (ts_ms DESC, source_partition ASC, seq DESC)"
            ),
            // Two days of an account's trades, a self-match among them.
            format!(
                "INSERT INTO {ks}.trades_by_account (account, ts_ms, source_partition, seq, \
                 role, symbol, price, qty, maker_order_id, maker_account, taker_order_id, \
                 taker_account, taker_side) VALUES ('alice', {}, 0, 5, 'maker', 'BTC-USD', \
                 60000.50, 0.5, 'm-5', 'alice', 't-5', 'bob', 'buy') USING TIMESTAMP 5",
                T0
            ),
            format!(
                "INSERT INTO {ks}.trades_by_account (account, ts_ms, source_partition, seq, \
                 role, symbol, price, qty, maker_order_id, maker_account, taker_order_id, \
                 taker_account, taker_side) VALUES ('alice', {}, 0, 6, 'self', 'BTC-USD', \
                 60001.00, 0.25, 'm-6', 'alice', 't-6', 'alice', 'sell') USING TIMESTAMP 6",
                T0 + suite::DAY_MS
            ),
            format!(
                "INSERT INTO {ks}.candles (symbol, interval, bucket_start_ms, open, high, low, \
                 close, volume, turnover, vwap, trade_count, closed, source_partition, seq) \
                 VALUES ('BTC-USD', '1m', {T0}, 100.10, 101.00, 99.95, 100.50, 3.000, \
                 301.5000, 100.500000, 4, false, 1, 9) USING TIMESTAMP 9"
            ),
            format!(
                "INSERT INTO {ks}.notifications_by_account (account, ts_ms, source_partition, \
                 seq, kind, order_id, symbol, message) VALUES ('alice', {T0}, 4, 13, 'fill', \
                 'o-13', 'BTC-USD', 'bought') USING TIMESTAMP 13"
            ),
        ],
    );
    // Not migrated yet: a worker refuses it, naming the tables still to move.
    match ScyllaStore::connect_with(&nodes, &ks, &options()) {
        Err(StoreError::NotMigrated { detail, .. }) => {
            assert!(detail.contains("orders"), "{detail}")
        }
        other => panic!("expected NotMigrated, got {other:?}"),
    }
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
        let trades = store.trades_by_account("alice", 10).unwrap();
        assert_eq!(trades.iter().map(|t| t.seq).collect::<Vec<_>>(), [6, 5]);
        assert_eq!(trades[0].price.to_string(), "60001.00");
        let candle = store
            .candle("BTC-USD", Interval::M1, T0)
            .unwrap()
            .expect("moved");
        assert_eq!(
            (candle.trade_count, candle.close.to_string()),
            (4, "100.50".to_owned())
        );
        assert_eq!(
            store.candles("BTC-USD", Interval::M1, 5).unwrap(),
            std::slice::from_ref(&candle)
        );
        assert_eq!(store.open_candles(1).unwrap(), [candle]);
        let notes = store.notifications("alice", 10).unwrap();
        assert_eq!((notes.len(), notes[0].text.as_str()), (1, "bought"));
        for old in [
            "orders",
            "trades_by_account",
            "candles",
            "notifications_by_account",
        ] {
            assert!(
                !has_table(&nodes, &ks, old),
                "{old} is dropped once its rows are moved"
            );
        }
        // Migrating again is harmless, and a worker now connects.
        store.migrate().unwrap();
        assert_eq!(store.counts().unwrap().orders, 2);
        ScyllaStore::connect_with(&nodes, &ks, &options()).expect("migrated");
    });
}
