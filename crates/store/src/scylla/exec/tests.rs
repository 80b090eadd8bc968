use super::*;

#[test]
fn limits_are_positive_ints() {
    assert_eq!(cql_limit(0), 1);
    assert_eq!(cql_limit(10), 10);
    assert_eq!(cql_limit(usize::MAX), i32::MAX);
}

#[test]
fn owned_runtime_blocks_inside_another_runtime() {
    let rt = OwnedRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap(),
    ));
    assert_eq!(rt.block_on(async { 7 }).unwrap(), 7);
    let outer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = outer.block_on(async { rt.block_on(async { 8 }) });
    assert_eq!(got.unwrap(), 8);
    // Dropping it inside a runtime must not panic either.
    outer.block_on(async move { drop(rt) });
}

#[test]
fn concurrent_writes_stop_at_the_first_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ok = |_: usize| -> WriteFuture<'static> { Box::pin(async { Ok(()) }) };
    let writes: Vec<_> = (0..1000).map(ok).collect();
    assert!(rt.block_on(run_concurrently(writes, 7)).is_ok());
    assert!(rt.block_on(run_concurrently(Vec::new(), 7)).is_ok());
    let mut writes: Vec<_> = (0..10).map(ok).collect();
    writes.push(Box::pin(async { Err(StoreError::Other("boom".into())) }));
    writes.extend((0..10).map(ok));
    let err = rt.block_on(run_concurrently(writes, 3)).unwrap_err();
    assert_eq!(err.to_string(), "boom");
}
