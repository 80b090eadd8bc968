use std::hash::BuildHasher;

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

/// Equality compares whole words of the storage: two names are equal exactly when their strings
/// are, whichever word a difference falls in, and a name never equals a longer one that only
/// adds NUL bytes (the storage's padding).
#[test]
fn names_are_equal_exactly_when_their_strings_are() {
    let full = "x".repeat(NAME_CAPACITY);
    let mut strings = vec![
        String::new(),
        "a".to_owned(),
        "b".to_owned(),
        "a\0".to_owned(),
        "abcdefgh".to_owned(),
        "abcdefgh0".to_owned(),
        "abcdefgh1".to_owned(),
        full.clone(),
    ];
    // The same long string differing in one byte, in each word of the storage.
    for at in [0, 7, 8, 15, 16, 31, 32, NAME_CAPACITY - 1] {
        let mut s = full.clone().into_bytes();
        s[at] = b'y';
        strings.push(String::from_utf8(s).unwrap());
    }
    let hasher = std::collections::hash_map::RandomState::new();
    for a in &strings {
        for b in &strings {
            let (na, nb) = (Name::new(a).unwrap(), Name::new(b).unwrap());
            assert_eq!(na == nb, a == b, "{a:?} vs {b:?}");
            if na == nb {
                assert_eq!(hasher.hash_one(na), hasher.hash_one(nb), "{a:?}");
            }
        }
    }
}
