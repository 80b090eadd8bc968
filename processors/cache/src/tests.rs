use super::*;

#[test]
fn a_url_never_shows_its_password() {
    let u = RedisUrl::new("redis://:s3cret@127.0.0.1:6379/0\n");
    assert_eq!(u.as_str(), "redis://:s3cret@127.0.0.1:6379/0");
    assert_eq!(u.to_string(), "redis://:***@127.0.0.1:6379/0");
    assert!(!format!("{u:?}").contains("s3cret"));
    let u = RedisUrl::new("redis://app:pw@h:1");
    assert_eq!(u.redacted(), "redis://app:***@h:1");
    assert_eq!(
        RedisUrl::new("redis://127.0.0.1:6379").redacted(),
        "redis://127.0.0.1:6379"
    );
}
