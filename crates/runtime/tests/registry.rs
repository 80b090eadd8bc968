//! The schema-registry client against a real Confluent-compatible registry, named by
//! `TRADESTREAM_TEST_REGISTRY` (the root of its Confluent API, e.g.
//! `http://127.0.0.1:18081/apis/ccompat/v7`; `deploy/local/services up registry` starts one).
//! Under `CI=true` a missing registry fails the test.

use std::time::{SystemTime, UNIX_EPOCH};

use tradestream_runtime::registry::{RegistryError, SchemaRegistry};

/// A subject and a record schema no earlier run registered.
fn fresh() -> (String, String) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = format!("t{nanos:x}{}", std::process::id());
    let schema = format!(
        r#"{{"type":"record","name":"R{tag}","namespace":"tradestream.test","fields":[{{"name":"a","type":"long"}}]}}"#
    );
    (format!("{tag}-value"), schema)
}

#[test]
fn a_real_registry_registers_looks_up_and_reports_unknown_ids() {
    let Some(url) =
        tradestream_testkit::service("TRADESTREAM_TEST_REGISTRY", "the schema-registry test")
    else {
        return;
    };
    let (subject, schema) = fresh();
    let mut registry = SchemaRegistry::new(&url).unwrap();
    let id = registry.register(&subject, &schema).unwrap();
    // Registering the same schema again gives the same id.
    let mut again = SchemaRegistry::new(&url).unwrap();
    assert_eq!(again.register(&subject, &schema).unwrap(), id);
    // A fresh client reads it back by id: the same schema (the registry may normalise spacing).
    let mut fresh_client = SchemaRegistry::new(&url).unwrap();
    let back: serde_json::Value = serde_json::from_str(fresh_client.schema(id).unwrap()).unwrap();
    let sent: serde_json::Value = serde_json::from_str(&schema).unwrap();
    assert_eq!(back, sent);
    // A second, different schema under another subject gets another id.
    let (other_subject, other_schema) = fresh();
    let other = registry.register(&other_subject, &other_schema).unwrap();
    assert_ne!(other, id);
    // An id nobody registered is a 404 with the registry's error body.
    match fresh_client.schema(u32::MAX - 7) {
        Err(RegistryError::Status { status: 404, .. }) => {}
        other => panic!("expected 404 for an unknown id, got {other:?}"),
    }
}
