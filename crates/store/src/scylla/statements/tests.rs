use super::*;

#[test]
fn inserts_name_every_marker_after_its_column() {
    assert_eq!(
        insert_cql("t", &["a", "b"]),
        "INSERT INTO t (a, b) VALUES (:a, :b) USING TIMESTAMP :ts"
    );
    assert_eq!(
        select_cql("t", &["a", "b"], "k = :k"),
        "SELECT a, b FROM t WHERE k = :k"
    );
}
