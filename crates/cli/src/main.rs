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
    /// Run the matching engine offline: order commands as JSON lines in, events as JSON lines out.
    Match(commands::matching::MatchArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Match(args) => commands::matching::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
