//! The `--store` value: which backend, and where.
//!
//! - `sqlite:PATH`: a SQLite file, relative to the working directory or absolute
//!   (`sqlite:data/tradestream.db`, `sqlite:/var/lib/tradestream.db`). The URL spelling
//!   `sqlite:///abs/path.db` (empty authority) is accepted too.
//! - `scylla://HOST[:PORT][,HOST[:PORT]...]/KEYSPACE`: Scylla or Cassandra contact points (port
//!   9042 when omitted; IPv6 hosts in brackets, `[::1]:9042`) and the keyspace, a CQL identifier
//!   `[a-zA-Z_][a-zA-Z0-9_]{0,47}`. CQL folds unquoted names to lower case, so the keyspace is
//!   kept lower-cased.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::StoreError;

/// The native CQL port.
const DEFAULT_CQL_PORT: u16 = 9042;

/// Longest keyspace name Scylla and Cassandra accept.
const MAX_KEYSPACE_LEN: usize = 48;

/// A parsed store location. `Display` prints the canonical spelling, which parses back to the
/// same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUri {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A Scylla/Cassandra cluster and keyspace.
    Scylla {
        /// Contact points, each `host:port` (the port always present).
        nodes: Vec<String>,
        /// Keyspace, lower case, a valid CQL identifier.
        keyspace: String,
    },
}

impl FromStr for StoreUri {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| StoreError::Uri {
            uri: s.to_owned(),
            reason,
        };
        if let Some(rest) = s.strip_prefix("scylla://") {
            let (hosts, keyspace) = rest.split_once('/').ok_or_else(|| {
                fail("a keyspace is required: scylla://host:port/keyspace".to_owned())
            })?;
            let nodes = hosts
                .split(',')
                .map(parse_node)
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            validate_keyspace(keyspace).map_err(fail)?;
            Ok(StoreUri::Scylla {
                nodes,
                keyspace: keyspace.to_ascii_lowercase(),
            })
        } else if let Some(rest) = s.strip_prefix("sqlite:") {
            // `sqlite:///abs` is the URL form of `sqlite:/abs` (empty authority).
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(fail(
                    "a database path is required: sqlite:data/tradestream.db".to_owned(),
                ));
            }
            Ok(StoreUri::Sqlite(PathBuf::from(path)))
        } else {
            Err(fail(
                "expected sqlite:PATH or scylla://host:port/keyspace".to_owned(),
            ))
        }
    }
}

impl fmt::Display for StoreUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUri::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUri::Scylla { nodes, keyspace } => {
                write!(f, "scylla://{}/{keyspace}", nodes.join(","))
            }
        }
    }
}

/// `host[:port]` → `host:port`.
fn parse_node(node: &str) -> Result<String, String> {
    if node.is_empty() {
        return Err("empty host in the host list".to_owned());
    }
    let (host, port) = if let Some(v6) = node.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("host {node:?}: unclosed '['"))?;
        if addr.is_empty() {
            return Err(format!("host {node:?}: empty IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("host {node:?}: expected ':port' after ']'"))?,
            ),
        };
        (&node[..addr.len() + 2], port)
    } else {
        match node.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (node, None),
        }
    };
    if host.is_empty() {
        return Err(format!("host {node:?}: empty host name"));
    }
    if host.contains(['/', '@', '?', '#', ' ']) {
        return Err(format!("host {node:?}: invalid character in host name"));
    }
    let port = match port {
        None => DEFAULT_CQL_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(format!("host {node:?}: port must be 1-65535, got {p:?}")),
        },
    };
    Ok(format!("{host}:{port}"))
}

/// Whether `name` is an unquoted CQL identifier short enough for a keyspace.
pub(crate) fn validate_keyspace(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let valid = match bytes.next() {
        Some(first) => {
            (first.is_ascii_alphabetic() || first == b'_')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        None => return Err("a keyspace is required: scylla://host:port/keyspace".to_owned()),
    };
    if !valid {
        return Err(format!(
            "keyspace {name:?} is not a CQL identifier ([a-zA-Z_][a-zA-Z0-9_]*)"
        ));
    }
    if name.len() > MAX_KEYSPACE_LEN {
        return Err(format!(
            "keyspace {name:?} is longer than {MAX_KEYSPACE_LEN} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
