use super::*;

#[test]
fn every_table_is_created_by_a_migration_and_no_legacy_one_is() {
    let created: Vec<String> = MIGRATIONS
        .iter()
        .flat_map(|(_, script)| cql_statements(script))
        .map(|s| {
            assert!(s.starts_with("CREATE TABLE IF NOT EXISTS "), "{s}");
            s["CREATE TABLE IF NOT EXISTS ".len()..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let mut sorted = created.clone();
    sorted.sort();
    let mut tables: Vec<&str> = TABLES.to_vec();
    tables.sort_unstable();
    assert_eq!(sorted, tables);
    for (old, new) in LEGACY_TABLES {
        assert!(!created.iter().any(|t| t == old), "{old} is replaced");
        assert!(TABLES.contains(new), "{new}");
    }
    assert_eq!(
        cql_statements("-- a; b\nCREATE x (a int); -- c;\n\n;CREATE y (b int)"),
        ["CREATE x (a int)", "CREATE y (b int)"]
    );
}

#[test]
fn replication_maps_compare_by_class_and_counts() {
    let r: Replication = "dc1:3,dc2:2".parse().unwrap();
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let nts = "org.apache.cassandra.locator.NetworkTopologyStrategy";
    assert!(same_replication(
        &map(&[("class", nts), ("dc1", "3"), ("dc2", "2")]),
        &r
    ));
    assert!(!same_replication(&map(&[("class", nts), ("dc1", "3")]), &r));
    assert!(!same_replication(
        &map(&[
            ("class", "org.apache.cassandra.locator.SimpleStrategy"),
            ("replication_factor", "1")
        ]),
        &r
    ));
}
