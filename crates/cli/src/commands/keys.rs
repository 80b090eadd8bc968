//! `tradestream keys new`: an Ed25519 key pair for the gateway's signed requests. The private
//! key goes to a file only its owner can read; the public key is printed as the key file's entry
//! (the venue stores nothing secret).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use tradestream_gateway::auth;

/// Key management.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key pair: DIR/KEY_ID.pem (PKCS#8, mode 0600) and the key file entry on stdout.
    New(NewKeyArgs),
}

/// Arguments of `keys new`.
#[derive(Debug, clap::Args)]
pub struct NewKeyArgs {
    /// The account the key trades for.
    #[arg(long)]
    pub account: String,
    /// The key's id (`X-TS-Key`); also the file name.
    #[arg(long)]
    pub key_id: String,
    /// Where to write the private key.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
}

/// Runs a `keys` command.
pub fn run(cmd: &KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::New(args) => new_key(args),
    }
}

fn new_key(args: &NewKeyArgs) -> anyhow::Result<()> {
    let simple = |s: &str| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !s.starts_with('.')
    };
    anyhow::ensure!(
        simple(&args.key_id),
        "--key-id must be 1 to 64 characters of [A-Za-z0-9._-], not starting with a dot"
    );
    anyhow::ensure!(
        !args.account.is_empty() && args.account.len() <= 40 && simple(&args.account),
        "--account must be 1 to 40 characters of [A-Za-z0-9._-]"
    );
    let key = auth::generate_signing_key().context("no randomness from the operating system")?;
    let pem = auth::signing_key_pem(&key).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let path = args.out.join(format!("{}.pem", args.key_id));
    write_private(&path, pem.as_bytes())?;
    eprintln!("private key written to {} (mode 0600)", path.display());
    println!(
        "  - key: {:?}\n    account: {:?}\n    public-key: {:?}",
        args.key_id,
        args.account,
        auth::encode_public_key(&key.verifying_key())
    );
    Ok(())
}

/// Creates `path` readable by its owner only; never replaces an existing file.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
