use super::*;

fn parse(s: &str) -> StoreUri {
    match s.parse() {
        Ok(uri) => uri,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn reason(s: &str) -> String {
    match s.parse::<StoreUri>() {
        Ok(uri) => panic!("{s:?} should not parse, got {uri:?}"),
        Err(StoreError::Uri { uri, reason }) => {
            assert_eq!(uri, s, "the error names the input");
            reason
        }
        Err(e) => panic!("{s:?}: wrong error kind {e:?}"),
    }
}

#[test]
fn sqlite_paths() {
    assert_eq!(
        parse("sqlite:data/tradestream.db"),
        StoreUri::Sqlite(PathBuf::from("data/tradestream.db"))
    );
    assert_eq!(
        parse("sqlite:/abs/path.db"),
        StoreUri::Sqlite(PathBuf::from("/abs/path.db"))
    );
    assert_eq!(
        parse("sqlite:///abs/path.db"),
        StoreUri::Sqlite(PathBuf::from("/abs/path.db"))
    );
    assert!(reason("sqlite:").contains("path is required"));
    assert!(reason("sqlite://").contains("path is required"));
}

#[test]
fn scylla_nodes_and_keyspace() {
    assert_eq!(
        parse("scylla://127.0.0.1:9042/tradestream"),
        StoreUri::Scylla {
            nodes: vec!["127.0.0.1:9042".to_owned()],
            keyspace: "tradestream".to_owned()
        }
    );
    assert_eq!(
        parse("scylla://db1,db2:19042,[::1]/Trade_Stream_2"),
        StoreUri::Scylla {
            nodes: vec![
                "db1:9042".to_owned(),
                "db2:19042".to_owned(),
                "[::1]:9042".to_owned()
            ],
            keyspace: "trade_stream_2".to_owned()
        }
    );
    assert_eq!(
        parse("scylla://[::1]:9043/_ks"),
        StoreUri::Scylla {
            nodes: vec!["[::1]:9043".to_owned()],
            keyspace: "_ks".to_owned()
        }
    );
}

#[test]
fn scylla_errors_say_what_is_wrong() {
    assert!(reason("scylla://127.0.0.1:9042").contains("keyspace is required"));
    assert!(reason("scylla://127.0.0.1:9042/").contains("keyspace is required"));
    assert!(reason("scylla://h/1ks").contains("not a CQL identifier"));
    assert!(reason("scylla://h/my-ks").contains("not a CQL identifier"));
    assert!(reason("scylla://h/ks/extra").contains("not a CQL identifier"));
    assert!(reason(&format!("scylla://h/{}", "k".repeat(49))).contains("longer than 48"));
    // 48 characters is the limit, not past it.
    parse(&format!("scylla://h/{}", "k".repeat(48)));
    assert!(reason("scylla:///ks").contains("empty host"));
    assert!(reason("scylla://a,,b/ks").contains("empty host"));
    assert!(reason("scylla://:9042/ks").contains("empty host name"));
    assert!(reason("scylla://h:0/ks").contains("port must be"));
    assert!(reason("scylla://h:99999/ks").contains("port must be"));
    assert!(reason("scylla://h:x/ks").contains("port must be"));
    assert!(reason("scylla://[::1/ks").contains("unclosed"));
    assert!(reason("scylla://[::1]x/ks").contains("expected ':port'"));
    assert!(reason("scylla://u@h/ks").contains("invalid character"));
}

#[test]
fn unknown_scheme() {
    assert!(reason("postgres://h/db").contains("expected sqlite:PATH"));
    assert!(reason("").contains("expected sqlite:PATH"));
}

#[test]
fn display_round_trips() {
    for s in [
        "sqlite:data/tradestream.db",
        "sqlite:/abs/path.db",
        "scylla://127.0.0.1:9042/tradestream",
        "scylla://db1:9042,[::1]:9043/ks",
    ] {
        let uri = parse(s);
        assert_eq!(uri.to_string(), s);
        assert_eq!(parse(&uri.to_string()), uri);
    }
    // Defaults are spelled out.
    assert_eq!(
        parse("scylla://db/KS").to_string(),
        "scylla://db:9042/ks".to_owned()
    );
}
