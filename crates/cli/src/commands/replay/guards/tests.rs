use super::*;

#[test]
fn suffixes() {
    assert!(check_suffix("--suffix", "r1").is_ok());
    assert!(check_suffix("--suffix", "what-if_2").is_ok());
    for bad in ["", "a.b", "a/b", "ü", &"x".repeat(65)] {
        assert!(check_suffix("--suffix", bad).is_err(), "{bad}");
    }
}

#[test]
fn the_live_store_is_refused() {
    let a = StoreUri::Sqlite("data/x.db".into());
    assert!(not_live(&a, &a).is_err());
    assert!(not_live(&a, &StoreUri::Sqlite("data/y.db".into())).is_ok());
    // The same file spelled another way.
    let cwd = std::env::current_dir().unwrap();
    let relative = StoreUri::Sqlite("not-there-yet.db".into());
    let absolute = StoreUri::Sqlite(cwd.join("not-there-yet.db"));
    assert!(not_live(&relative, &absolute).is_err());
    let s = |ks: &str| -> StoreUri { format!("scylla://127.0.0.1:9042/{ks}").parse().unwrap() };
    assert!(not_live(&s("live"), &s("live")).is_err());
    assert!(not_live(&s("live"), &s("shadow")).is_ok());
}
