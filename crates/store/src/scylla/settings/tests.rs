use super::*;

#[test]
fn replication_parses_and_renders_cql() {
    let r: Replication = "dc2:3, dc1:3".parse().unwrap();
    assert_eq!(r.to_string(), "dc1:3,dc2:3");
    assert_eq!(
        r.cql_map(),
        "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 3}"
    );
    for bad in [
        "",
        "dc1",
        "dc1:0",
        "dc1:x",
        "dc1:3,dc1:2",
        "d'c:1",
        ":3",
        "dc1:100",
    ] {
        assert!(bad.parse::<Replication>().is_err(), "{bad:?}");
    }
}

#[test]
fn consistency_levels_parse_by_name() {
    assert_eq!(
        parse_consistency("local_quorum"),
        Ok(Consistency::LocalQuorum)
    );
    assert_eq!(parse_consistency("LOCAL-ONE"), Ok(Consistency::LocalOne));
    assert_eq!(parse_consistency("QUORUM"), Ok(Consistency::Quorum));
    assert!(parse_consistency("most").is_err());
}

#[test]
fn options_refuse_half_settings() {
    let ok = ScyllaOptions::default();
    assert!(ok.validate().is_ok());
    let user_only = ScyllaOptions {
        username: Some("u".into()),
        ..ScyllaOptions::default()
    };
    assert!(user_only.validate().is_err());
    let key_only = ScyllaOptions {
        tls: Some(TlsFiles {
            ca_file: "ca.pem".into(),
            cert_file: None,
            key_file: Some("k.pem".into()),
        }),
        ..ScyllaOptions::default()
    };
    assert!(key_only.validate().is_err());
    let any = ScyllaOptions {
        consistency: Consistency::Any,
        ..ScyllaOptions::default()
    };
    assert!(any.validate().is_err());
}

#[test]
fn a_secret_does_not_print() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s:?}"), "Secret(***)");
    assert_eq!(s.expose(), "hunter2");
}

#[test]
fn a_missing_ca_file_is_a_settings_error() {
    let files = TlsFiles {
        ca_file: "/nonexistent/ca.pem".into(),
        cert_file: None,
        key_file: None,
    };
    assert!(matches!(
        tls_config(&files),
        Err(StoreError::Settings {
            source: Some(_),
            ..
        })
    ));
}
