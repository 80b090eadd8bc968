//! The backend suite on Scylla/Cassandra, when `SCYLLA_URI` names a cluster
//! (e.g. `scylla://127.0.0.1:9042/tradestream_test`). Each case gets a keyspace of its own,
//! named after the URI's keyspace and dropped at the end.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

use tradestream_store::scylla::ScyllaStore;
use tradestream_store::{Store, StoreUri};

fn with_store(case: &str, body: fn(&mut dyn Store)) {
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
        return;
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

    let mut store = ScyllaStore::connect(&nodes, &case_ks).unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut store)));
    if let Err(e) = store.drop_keyspace() {
        eprintln!("could not drop keyspace {case_ks}: {e}");
    }
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

tradestream_store::store_suite!(with_store);
