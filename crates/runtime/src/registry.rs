//! A Confluent-compatible schema registry client: just what the workers need.
//!
//! - Writers register each output schema under `<topic>-value` once at start
//!   ([`SchemaRegistry::register`]) and frame records with the id it returns (Confluent wire
//!   format: `00`, the id, the Avro body).
//! - Readers check a Confluent-framed record's id before decoding it
//!   ([`SchemaRegistry::schema`], cached per id): a record written with another schema is a dead
//!   letter, not a misread.
//!
//! Plain HTTP/1.1 over a blocking socket (`http://host:port[/prefix]`), with a timeout; a
//! registry behind TLS needs a local TLS-terminating proxy. The REST API is the one Confluent
//! Schema Registry, Redpanda and Karapace serve.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The URL is not `http://host[:port][/prefix]`.
    #[error("schema registry URL {0:?}: expected http://host[:port][/prefix]")]
    Url(String),
    /// Connecting, writing or reading failed.
    #[error("schema registry {url}: {source}")]
    Io {
        /// The registry.
        url: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The registry answered with an error status.
    #[error("schema registry {url}: HTTP {status}: {body}")]
    Status {
        /// The registry.
        url: String,
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
    /// The answer is not what the API promises.
    #[error("schema registry {url}: unexpected answer: {detail}")]
    Answer {
        /// The registry.
        url: String,
        /// What is wrong.
        detail: String,
    },
}

/// A schema registry at one URL, with a cache of the schemas it has told.
#[derive(Debug)]
pub struct SchemaRegistry {
    url: String,
    host: String,
    port: u16,
    prefix: String,
    timeout: Duration,
    by_id: BTreeMap<u32, String>,
}

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

impl SchemaRegistry {
    /// A client for the registry at `url` (`http://host[:port][/prefix]`, port 80 by default).
    pub fn new(url: &str) -> Result<Self, RegistryError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| RegistryError::Url(url.to_owned()))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| RegistryError::Url(url.to_owned()))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(RegistryError::Url(url.to_owned()));
        }
        Ok(SchemaRegistry {
            url: url.to_owned(),
            host: host.to_owned(),
            port,
            prefix: prefix.to_owned(),
            timeout: Duration::from_secs(10),
            by_id: BTreeMap::new(),
        })
    }

    /// Registers `schema` (Avro JSON) under `subject` (or finds it already registered) and
    /// returns its id.
    pub fn register(&mut self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let answer = self.call(
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(&body),
        )?;
        let id = answer
            .get("id")
            .and_then(serde_json::Value::as_u64)
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| self.answer(format!("no id in {answer}")))?;
        self.by_id.insert(id, schema.to_owned());
        Ok(id)
    }

    /// The schema (Avro JSON) with this id, from the cache or the registry.
    pub fn schema(&mut self, id: u32) -> Result<&str, RegistryError> {
        if !self.by_id.contains_key(&id) {
            let answer = self.call("GET", &format!("/schemas/ids/{id}"), None)?;
            let schema = answer
                .get("schema")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| self.answer(format!("no schema in {answer}")))?
                .to_owned();
            self.by_id.insert(id, schema);
        }
        Ok(self.by_id.get(&id).map_or("", String::as_str))
    }

    fn answer(&self, detail: String) -> RegistryError {
        RegistryError::Answer {
            url: self.url.clone(),
            detail,
        }
    }

    fn io(&self, source: std::io::Error) -> RegistryError {
        RegistryError::Io {
            url: self.url.clone(),
            source,
        }
    }

    /// One request, `Connection: close`; returns the JSON body of a 2xx answer.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<serde_json::Value, RegistryError> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| self.io(e))?
            .next()
            .ok_or_else(|| self.answer(format!("{} does not resolve", self.host)))?;
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout).map_err(|e| self.io(e))?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(|e| self.io(e))?;
        let body = body.unwrap_or("");
        let request = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}:{}\r\nAccept: {CONTENT_TYPE}\r\n\
             Content-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.prefix,
            self.host,
            self.port,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| self.io(e))?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).map_err(|e| self.io(e))?;
        let text = String::from_utf8_lossy(&response);
        let (head, payload) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| self.answer("no HTTP header".into()))?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.answer(format!("bad status line {head:?}")))?;
        if head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
        }) {
            return Err(self.answer("chunked answers are not supported".into()));
        }
        if !(200..300).contains(&status) {
            return Err(RegistryError::Status {
                url: self.url.clone(),
                status,
                body: payload.trim().to_owned(),
            });
        }
        serde_json::from_str(payload.trim()).map_err(|e| self.answer(e.to_string()))
    }
}
