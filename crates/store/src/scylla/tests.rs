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

/// The error's messages, outermost first, as `{:#}` (anyhow) prints them joined by `: `.
fn chain(e: &dyn std::error::Error) -> Vec<String> {
    std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect()
}

/// A failed connection keeps the driver's error as its source, so the cause is in the chain
/// (and can be told apart by type), not flattened into the message.
#[test]
fn a_connection_error_keeps_the_drivers_error_as_its_source() {
    let nodes = ["127.0.0.1:1".to_owned()];
    let err = ScyllaStore::connect_with(&nodes, "ks", &ScyllaOptions::default())
        .expect_err("nothing listens on port 1");
    let messages = chain(&err);
    assert_eq!(
        messages[0], "scylla: connect to 127.0.0.1:1",
        "{messages:#?}"
    );
    let source = std::error::Error::source(&err).expect("the driver's error is the source");
    assert!(
        source
            .downcast_ref::<scylla::errors::NewSessionError>()
            .is_some(),
        "the source is the driver's error: {source:?}"
    );
    assert_eq!(messages[1], source.to_string());
    assert!(!messages[1].is_empty());
}

/// Nothing listens on port 1: connecting fails with an error, outside and inside a runtime.
#[test]
fn an_unreachable_cluster_is_an_error_not_a_panic() {
    let nodes = ["127.0.0.1:1".to_owned()];
    let options = ScyllaOptions::default();
    match ScyllaStore::connect_with(&nodes, "ks", &options) {
        Err(StoreError::Scylla { context, .. }) => {
            assert!(context.contains("connect to 127.0.0.1:1"), "{context}")
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
    let outer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inside = outer.block_on(async { ScyllaStore::connect_with(&nodes, "ks", &options) });
    assert!(
        matches!(inside, Err(StoreError::Scylla { .. })),
        "{inside:?}"
    );
}
