//! `tradestream`: one binary, one subcommand per job. Each subcommand lives in `commands/`;
//! this file only parses arguments, sets up logging and dispatches.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A Kafka-native stream-processing pipeline for a trading venue.
#[derive(Debug, Parser)]
#[command(name = "tradestream", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the embedded Kafka-compatible broker (tansu, memory storage).
    #[cfg(feature = "embedded-broker")]
    Broker(commands::broker::BrokerArgs),
    /// Create and check the topics of topics.yaml, or render them as Strimzi KafkaTopic resources.
    #[command(subcommand)]
    Topics(commands::topics::TopicsCommand),
    /// Produce records (a generated order flow or a file).
    #[command(subcommand)]
    Produce(commands::produce::ProduceCommand),
    /// Run a worker of the pipeline.
    #[command(subcommand)]
    Run(commands::run::Worker),
    /// Create the results store's tables.
    #[command(subcommand)]
    Store(commands::query::StoreCommand),
    /// Read the results store: trades, orders, candles, top of book, notifications.
    #[command(subcommand)]
    Query(commands::query::QueryCommand),
    /// Re-run a worker (from the beginning, an offset or a time) into shadow topics
    /// `<topic>.<suffix>` and, for the store workers, a shadow store.
    #[command(subcommand)]
    Replay(commands::replay::ReplayCommand),
    /// Compare live and shadow topics record by record and stores table by table; exit 0 when
    /// equal, 1 when they differ, 2 on an error.
    Verify(commands::replay::VerifyArgs),
    /// Print a topic's records as JSON lines (Avro decoded with the schema of topics.yaml).
    Tail(commands::tail::TailArgs),
    /// API keys for the gateway's signed requests.
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Run the matching engine offline: order commands as JSON lines in, events as JSON lines out.
    Match(commands::matching::MatchArgs),
    /// The whole pipeline on the embedded broker: broker, topics, order flow, matcher, summary.
    #[cfg(feature = "embedded-broker")]
    Demo(commands::demo::DemoArgs),
}

/// The log filter when `RUST_LOG` is not set: our own crates at info; libraries (the embedded
/// broker is chatty) at warn.
const DEFAULT_LOG: &str = "warn,tradestream=info,tradestream_matcher=info,tradestream_broker=info";
/// The demo's, when `RUST_LOG` is not set: it prints its own progress and summary, and a worker's
/// per-partition lines (dozens at every start and stop) would bury them; warnings still show.
const DEMO_LOG: &str = "warn";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_log = match cli.command {
        #[cfg(feature = "embedded-broker")]
        Command::Demo(_) => DEMO_LOG,
        _ => DEFAULT_LOG,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log)),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `verify`: live and shadow differ.
const EXIT_DIFFER: u8 = 1;
/// Any command that fails (bad arguments, a broker or store out of reach, a missing shadow):
/// 2, like clap's usage errors, so that scripts tell a failure from `verify`'s "differ".
const EXIT_ERROR: u8 = 2;

/// Runs a command; its exit code when it does not fail.
fn run(command: Command) -> anyhow::Result<ExitCode> {
    let done = match command {
        #[cfg(feature = "embedded-broker")]
        Command::Broker(args) => commands::broker::run(&args),
        Command::Topics(cmd) => commands::topics::run(&cmd),
        Command::Produce(cmd) => commands::produce::run(&cmd),
        Command::Run(worker) => commands::run::run(&worker),
        Command::Match(args) => commands::matching::run(&args),
        Command::Keys(cmd) => commands::keys::run(&cmd),
        Command::Store(cmd) => commands::query::run_store(&cmd),
        Command::Replay(cmd) => commands::replay::run(&cmd),
        Command::Verify(args) => {
            return Ok(match commands::replay::verify(&args)? {
                commands::replay::Verdict::Equal => ExitCode::SUCCESS,
                commands::replay::Verdict::Differ => ExitCode::from(EXIT_DIFFER),
            });
        }
        Command::Tail(args) => commands::tail::run(&args),
        Command::Query(cmd) => commands::query::run(&cmd),
        #[cfg(feature = "embedded-broker")]
        Command::Demo(args) => commands::demo::run(&args),
    };
    done.map(|()| ExitCode::SUCCESS)
}
