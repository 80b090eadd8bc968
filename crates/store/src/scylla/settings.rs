//! How to reach and talk to the cluster: [`ScyllaOptions`] (credentials, TLS, consistency,
//! local data center) and [`Replication`], the data-center replication `store migrate` creates
//! the keyspace with. See docs/scylla.md for the choices.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::statement::Consistency;

use crate::{Result, StoreError};

/// Environment variable: the user name to log in with.
pub const ENV_USERNAME: &str = "SCYLLA_USERNAME";
/// Environment variable: the password (or use a password file; never a command-line argument).
pub const ENV_PASSWORD: &str = "SCYLLA_PASSWORD";
/// Environment variable: a file holding the password (its first line).
pub const ENV_PASSWORD_FILE: &str = "SCYLLA_PASSWORD_FILE";
/// Environment variable: PEM file of the CA certificates to trust; set, connections use TLS.
pub const ENV_CA_FILE: &str = "SCYLLA_CA_FILE";
/// Environment variable: PEM client certificate chain (mutual TLS, with [`ENV_KEY_FILE`]).
pub const ENV_CERT_FILE: &str = "SCYLLA_CERT_FILE";
/// Environment variable: PEM private key of the client certificate.
pub const ENV_KEY_FILE: &str = "SCYLLA_KEY_FILE";
/// Environment variable: consistency of writes and of the reads a worker restores from.
pub const ENV_CONSISTENCY: &str = "SCYLLA_CONSISTENCY";
/// Environment variable: consistency of query reads (`tradestream query`, the gateway).
pub const ENV_READ_CONSISTENCY: &str = "SCYLLA_READ_CONSISTENCY";
/// Environment variable: the data center whose nodes coordinate this process's requests.
pub const ENV_LOCAL_DC: &str = "SCYLLA_LOCAL_DC";

/// Writes, and the reads a restarted worker resumes from (offsets, order states, open candles):
/// a majority of the local data center's replicas, so that with reads at the same level
/// (R + W > RF) a worker reads back what it wrote, whichever replicas answer.
pub const fn default_consistency() -> Consistency {
    Consistency::LocalQuorum
}

/// Query reads (trades, candles, book, notifications for `tradestream query` and the gateway):
/// one local replica. Fastest and still available with one replica of three up; a read may
/// miss a write acknowledged a moment ago by the other two (docs/scylla.md "Consistency").
pub const fn default_read_consistency() -> Consistency {
    Consistency::LocalOne
}

/// A secret string (a password): its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first line of the file at `path` (a trailing newline is not part of a password).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            StoreError::settings_from(
                format!("cannot read the password file {}", path.display()),
                e,
            )
        })?;
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            return Err(StoreError::settings(format!(
                "the password file {} is empty",
                path.display()
            )));
        }
        Ok(Secret(line.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// TLS to the cluster: whom to trust, and optionally the client certificate to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the CA certificate(s) the nodes' certificates chain to.
    pub ca_file: PathBuf,
    /// PEM client certificate chain, for clusters that require client certificates.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// How the Scylla backend connects and at which consistency it reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScyllaOptions {
    /// User name for `PasswordAuthenticator`; none: no authentication.
    pub username: Option<String>,
    /// Its password (from the environment or a file, never the command line).
    pub password: Option<Secret>,
    /// TLS; none: plain TCP.
    pub tls: Option<TlsFiles>,
    /// Writes and the reads a worker restores from ([`default_consistency`]).
    pub consistency: Consistency,
    /// Query reads ([`default_read_consistency`]).
    pub read_consistency: Consistency,
    /// The data center whose nodes coordinate requests (the `LOCAL_*` levels count replicas
    /// there); none: the driver picks any node, so set it on a multi-DC cluster.
    pub local_dc: Option<String>,
}

impl Default for ScyllaOptions {
    fn default() -> Self {
        ScyllaOptions {
            username: None,
            password: None,
            tls: None,
            consistency: default_consistency(),
            read_consistency: default_read_consistency(),
            local_dc: None,
        }
    }
}

impl ScyllaOptions {
    /// The options the environment gives ([`ENV_USERNAME`], [`ENV_PASSWORD`] or
    /// [`ENV_PASSWORD_FILE`], [`ENV_CA_FILE`], [`ENV_CERT_FILE`], [`ENV_KEY_FILE`],
    /// [`ENV_CONSISTENCY`], [`ENV_READ_CONSISTENCY`], [`ENV_LOCAL_DC`]); the defaults where unset.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        // A password file wins over the variable, as `--store-password-file` does.
        let password = match (var(ENV_PASSWORD_FILE), var(ENV_PASSWORD)) {
            (Some(file), _) => Some(Secret::from_file(Path::new(&file))?),
            (None, Some(p)) => Some(Secret::new(p)),
            (None, None) => None,
        };
        let consistency = |name: &str, default: Consistency| {
            var(name).map_or(Ok(default), |v| {
                parse_consistency(&v).map_err(|e| StoreError::settings(format!("{name}: {e}")))
            })
        };
        let options = ScyllaOptions {
            username: var(ENV_USERNAME),
            password,
            tls: var(ENV_CA_FILE).map(|ca| TlsFiles {
                ca_file: ca.into(),
                cert_file: var(ENV_CERT_FILE).map(PathBuf::from),
                key_file: var(ENV_KEY_FILE).map(PathBuf::from),
            }),
            consistency: consistency(ENV_CONSISTENCY, default_consistency())?,
            read_consistency: consistency(ENV_READ_CONSISTENCY, default_read_consistency())?,
            local_dc: var(ENV_LOCAL_DC),
        };
        options.validate()?;
        Ok(options)
    }

    /// Refuses what cannot work: a password without a user (or the reverse), a client key
    /// without its certificate, a write level that cannot be read back.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: &str| Err(StoreError::settings(m.to_owned()));
        match (&self.username, &self.password) {
            (Some(_), None) => {
                return fail(
                    "a Scylla user name needs a password (SCYLLA_PASSWORD or a password file)",
                );
            }
            (None, Some(_)) => {
                return fail("a Scylla password needs a user name (SCYLLA_USERNAME)");
            }
            _ => {}
        }
        if let Some(tls) = &self.tls
            && tls.cert_file.is_some() != tls.key_file.is_some()
        {
            return fail(
                "a client certificate and its key come together (SCYLLA_CERT_FILE, SCYLLA_KEY_FILE)",
            );
        }
        for (what, level) in [
            ("consistency", self.consistency),
            ("read consistency", self.read_consistency),
        ] {
            if matches!(level, Consistency::Serial | Consistency::LocalSerial) {
                return Err(StoreError::settings(format!(
                    "{what} {level}: serial levels are for lightweight transactions, which the store does not use"
                )));
            }
        }
        if matches!(self.consistency, Consistency::Any | Consistency::EachQuorum) {
            return Err(StoreError::settings(format!(
                "consistency {}: the level also applies to the reads a worker restores from, \
                 which {0} cannot serve",
                self.consistency
            )));
        }
        Ok(())
    }

    /// Applies the credentials, TLS and local data center to a session builder.
    pub(crate) fn apply(&self, mut builder: SessionBuilder) -> Result<SessionBuilder> {
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            builder = builder.user(user.clone(), password.expose());
        }
        if let Some(tls) = &self.tls {
            builder = builder.tls_context(Some(tls_config(tls)?));
        }
        let mut policy = DefaultPolicy::builder();
        if let Some(dc) = &self.local_dc {
            // LOCAL_* levels count the coordinator's data center: keep coordinators local.
            policy = policy
                .prefer_datacenter(dc.clone())
                .permit_dc_failover(false);
        }
        let profile = ExecutionProfile::builder()
            .consistency(self.consistency)
            .load_balancing_policy(policy.build())
            .build();
        Ok(builder.default_execution_profile_handle(profile.into_handle()))
    }
}

/// A rustls client configuration trusting `files.ca_file` (and showing the client certificate).
fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let fail = |what: &str, path: &Path, e: Box<dyn std::error::Error + Send + Sync>| {
        StoreError::Settings {
            message: format!("TLS {what} {}", path.display()),
            source: Some(e),
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(&files.ca_file)
        .map_err(|e| fail("CA file", &files.ca_file, e.into()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| fail("CA file", &files.ca_file, e.into()))?;
    if cas.is_empty() {
        return Err(StoreError::settings(format!(
            "TLS CA file {}: no certificate in it",
            files.ca_file.display()
        )));
    }
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| fail("CA file", &files.ca_file, e.into()))?;
    }
    // One provider named explicitly: the process may link several, and then rustls has no default.
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::settings_from("TLS protocol versions", e))?
    .with_root_certificates(roots);
    let config = match (&files.cert_file, &files.key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| fail("client certificate", cert, e.into()))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| fail("client certificate", cert, e.into()))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| fail("client key", key, e.into()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| StoreError::settings_from("TLS client certificate", e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A consistency level by its CQL name (`LOCAL_QUORUM`, `local_one`, `QUORUM`, ...).
pub fn parse_consistency(s: &str) -> std::result::Result<Consistency, String> {
    const LEVELS: [(&str, Consistency); 10] = [
        ("ANY", Consistency::Any),
        ("ONE", Consistency::One),
        ("TWO", Consistency::Two),
        ("THREE", Consistency::Three),
        ("QUORUM", Consistency::Quorum),
        ("ALL", Consistency::All),
        ("LOCAL_QUORUM", Consistency::LocalQuorum),
        ("EACH_QUORUM", Consistency::EachQuorum),
        ("LOCAL_ONE", Consistency::LocalOne),
        ("SERIAL", Consistency::Serial),
    ];
    let upper = s.trim().to_ascii_uppercase().replace('-', "_");
    LEVELS
        .iter()
        .find(|(name, _)| *name == upper)
        .map(|&(_, level)| level)
        .ok_or_else(|| {
            format!(
                "unknown consistency level {s:?}: expected one of {}",
                LEVELS.map(|(name, _)| name).join(", ")
            )
        })
}

/// The replication of the keyspace: replicas per data center, for `NetworkTopologyStrategy`.
/// Parsed from `DC1:3[,DC2:3...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication(BTreeMap<String, u32>);

impl Replication {
    /// Replicas per data center.
    pub fn data_centers(&self) -> &BTreeMap<String, u32> {
        &self.0
    }

    /// The `replication` map of `CREATE KEYSPACE`.
    pub fn cql_map(&self) -> String {
        let mut map = String::from("{'class': 'NetworkTopologyStrategy'");
        for (dc, n) in &self.0 {
            map.push_str(&format!(", '{dc}': {n}"));
        }
        map.push('}');
        map
    }
}

impl FromStr for Replication {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        let fail = |reason: String| {
            StoreError::settings(format!(
                "replication {s:?}: {reason} (expected DC:N[,DC:N...], e.g. dc1:3,dc2:3)"
            ))
        };
        let mut map = BTreeMap::new();
        for part in s.split(',').map(str::trim) {
            let (dc, n) = part
                .split_once(':')
                .ok_or_else(|| fail(format!("{part:?} has no ':N'")))?;
            let dc = dc.trim();
            // Data-center names go into the CQL text quoted: keep them to a safe alphabet.
            if dc.is_empty()
                || !dc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(fail(format!("bad data-center name {dc:?}")));
            }
            let n: u32 = n
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=99).contains(n))
                .ok_or_else(|| fail(format!("{dc}: replicas must be a number from 1 to 99")))?;
            if map.insert(dc.to_owned(), n).is_some() {
                return Err(fail(format!("{dc} appears twice")));
            }
        }
        Ok(Replication(map))
    }
}

impl fmt::Display for Replication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(dc, n)| format!("{dc}:{n}")).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests;
