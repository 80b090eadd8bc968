use clap::Parser as _;

use super::*;

#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: StoreCommand,
}

#[test]
fn migrate_on_scylla_refuses_without_replication() {
    let cli = Cli::try_parse_from(["t", "migrate", "--store", "scylla://127.0.0.1:1/ks"]).unwrap();
    let err = run_store(&cli.cmd).unwrap_err().to_string();
    assert!(err.contains("needs --replication"), "{err}");
    assert!(
        Cli::try_parse_from([
            "t",
            "migrate",
            "--store",
            "scylla://127.0.0.1:1/ks",
            "--replication",
            "dc1"
        ])
        .is_err()
    );
    let cli = Cli::try_parse_from([
        "t",
        "migrate",
        "--store",
        "sqlite:x.db",
        "--replication",
        "dc1:3",
    ])
    .unwrap();
    let err = run_store(&cli.cmd).unwrap_err().to_string();
    assert!(err.contains("Scylla/Cassandra store only"), "{err}");
}

#[test]
fn consistency_levels_default_and_parse() {
    let cli = Cli::try_parse_from([
        "t",
        "migrate",
        "--store",
        "scylla://127.0.0.1:1/ks",
        "--store-read-consistency",
        "local_quorum",
    ])
    .unwrap();
    let StoreCommand::Migrate { store, .. } = cli.cmd;
    assert_eq!(store.store_consistency, scylla::Consistency::LocalQuorum);
    assert_eq!(
        store.store_read_consistency,
        scylla::Consistency::LocalQuorum
    );
    assert!(Cli::try_parse_from(["t", "migrate", "--store-consistency", "most-of-them"]).is_err());
}
