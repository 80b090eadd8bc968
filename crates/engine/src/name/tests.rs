use super::*;

#[test]
fn round_trips_and_refuses_long_names() {
    let n = Name::new("o-1").unwrap();
    assert_eq!(n.as_str(), "o-1");
    assert_eq!(n, Name::new("o-1").unwrap());
    assert_ne!(n, Name::new("o-2").unwrap());
    let uuid = "123e4567-e89b-12d3-a456-426614174000";
    assert_eq!(Name::new(uuid).unwrap().as_str(), uuid);
    let long = "x".repeat(NAME_CAPACITY + 1);
    assert_eq!(
        Name::new(&long),
        Err(NameTooLong {
            len: NAME_CAPACITY + 1
        })
    );
    assert!(Name::EMPTY.is_empty());
}
