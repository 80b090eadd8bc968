//! `tradestream match`: the engine over a file, offline.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use tradestream_codec::json;
use tradestream_engine::{Command, Engine};

/// Arguments of `tradestream match`.
#[derive(Debug, clap::Args)]
pub struct MatchArgs {
    /// Instruments file (YAML).
    #[arg(long, default_value = "instruments.yaml")]
    pub instruments: PathBuf,
    /// Order commands, one JSON object per line; standard input when absent.
    #[arg(long)]
    pub input: Option<PathBuf>,
}

/// Reads commands, applies them in order, writes every event as one JSON line to stdout.
/// A line that does not decode is rejected in sequence (and named on stderr); the run goes on.
pub fn run(args: &MatchArgs) -> anyhow::Result<()> {
    let instruments = tradestream_config::load_instruments(&args.instruments)?;
    let input: Box<dyn BufRead> = match &args.input {
        Some(path) => Box::new(BufReader::new(
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(BufReader::new(io::stdin().lock())),
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let stats = match_lines(Engine::new(instruments), input, &mut out)?;
    out.flush().context("cannot write to stdout")?;
    tracing::info!(
        commands = stats.commands,
        events = stats.events,
        malformed = stats.malformed,
        "match finished"
    );
    Ok(())
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MatchStats {
    /// Non-blank lines read.
    pub commands: u64,
    /// Events written.
    pub events: u64,
    /// Lines that did not decode.
    pub malformed: u64,
}

/// The loop behind [`run`], over any reader and writer.
pub fn match_lines(
    mut engine: Engine,
    mut input: impl BufRead,
    out: &mut impl Write,
) -> anyhow::Result<MatchStats> {
    let mut stats = MatchStats::default();
    let mut line = Vec::with_capacity(512);
    let mut events = Vec::with_capacity(64);
    let mut encoded = Vec::with_capacity(4096);
    for number in 1u64.. {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read line {number}"))?
            == 0
        {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        stats.commands += 1;
        let cmd = json::decode_command(&line, 0);
        if let Command::Invalid(bad) = &cmd {
            stats.malformed += 1;
            eprintln!("line {number}: malformed command: {}", bad.detail);
        }
        events.clear();
        engine.apply(&cmd, &mut events);
        encoded.clear();
        for event in &events {
            json::encode_event(engine.instruments(), event, &mut encoded);
            encoded.push(b'\n');
        }
        stats.events += events.len() as u64;
        out.write_all(&encoded).context("cannot write to stdout")?;
    }
    Ok(stats)
}
