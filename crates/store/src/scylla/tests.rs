use super::*;

#[test]
fn a_bad_keyspace_or_no_node_is_an_error() {
    let nodes = ["127.0.0.1:9042".to_owned()];
    let options = ScyllaOptions::default();
    assert!(matches!(
        ScyllaStore::connect_with(&nodes, "bad-name", &options),
        Err(StoreError::Uri { .. })
    ));
    assert!(matches!(
        ScyllaStore::connect_with(&[], "ks", &options),
        Err(StoreError::Uri { .. })
    ));
}

/// Nothing listens on port 1: connecting fails with an error, outside and inside a runtime.
#[test]
fn an_unreachable_cluster_is_an_error_not_a_panic() {
    let nodes = ["127.0.0.1:1".to_owned()];
    let options = ScyllaOptions::default();
    match ScyllaStore::connect_with(&nodes, "ks", &options) {
        Err(StoreError::Scylla(msg)) => {
            assert!(msg.contains("connect to 127.0.0.1:1"), "{msg}")
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
    let outer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inside = outer.block_on(async { ScyllaStore::connect_with(&nodes, "ks", &options) });
    assert!(matches!(inside, Err(StoreError::Scylla(_))), "{inside:?}");
}
