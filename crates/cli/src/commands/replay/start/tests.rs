use super::*;

#[test]
fn offsets_parse() {
    assert_eq!(parse_offsets("42"), Ok(OffsetSpec::All(42)));
    assert_eq!(
        parse_offsets("0:10, 3:7"),
        Ok(OffsetSpec::Partitions(BTreeMap::from([(0, 10), (3, 7)])))
    );
    assert!(parse_offsets("-1").is_err());
    assert!(parse_offsets("1:2,1:3").is_err());
    assert!(parse_offsets("x:1").is_err());
    assert!(parse_offsets("1:").is_err());
}

#[test]
fn timestamps_parse() {
    assert_eq!(parse_timestamp("1700000000000"), Ok(1_700_000_000_000));
    assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
    assert_eq!(
        parse_timestamp("2023-11-14T22:13:20.5Z"),
        Ok(1_700_000_000_500)
    );
    assert_eq!(
        parse_timestamp("2023-11-14T23:13:20+01:00"),
        Ok(1_700_000_000_000)
    );
    assert_eq!(
        parse_timestamp("2024-02-29T00:00:00Z"),
        Ok(1_709_164_800_000)
    );
    for bad in [
        "",
        "yesterday",
        "2023-13-01T00:00:00Z",
        "2023-11-14T22:13:20",
        "2023-11-14",
    ] {
        assert!(parse_timestamp(bad).is_err(), "{bad}");
    }
}
