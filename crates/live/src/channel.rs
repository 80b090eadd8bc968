//! Channel names (`book:SYM`, `trades:SYM`, `candles:SYM:INTERVAL`, `notifications`) and the
//! messages clients send.

use std::fmt;

use serde::Deserialize;

/// Candle intervals the market-data worker writes.
pub const INTERVALS: [&str; 3] = ["1s", "1m", "1h"];

/// One channel a client can subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// Top of book and the ladder of one symbol.
    Book(String),
    /// Trades of one symbol.
    Trades(String),
    /// Candles of one symbol and interval.
    Candles(String, String),
    /// The authenticated account's notifications (private).
    Notifications,
}

/// Why a channel name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Not one of the channel forms.
    #[error(
        "unknown channel {0:?}: expected book:SYM, trades:SYM, candles:SYM:INTERVAL or notifications"
    )]
    Unknown(String),
    /// A symbol that is not a configured instrument.
    #[error("unknown symbol {0:?}")]
    UnknownSymbol(String),
    /// A candle interval other than 1s, 1m, 1h.
    #[error("unknown candle interval {0:?}: expected 1s, 1m or 1h")]
    UnknownInterval(String),
    /// `notifications` on an unauthenticated connection.
    #[error("the notifications channel needs a signed connection (key, ts, nonce, sig)")]
    Unauthenticated,
}

impl ChannelError {
    /// The error code sent to the client.
    pub fn code(&self) -> &'static str {
        match self {
            ChannelError::Unknown(_) => "unknown_channel",
            ChannelError::UnknownSymbol(_) => "unknown_symbol",
            ChannelError::UnknownInterval(_) => "unknown_interval",
            ChannelError::Unauthenticated => "missing_auth",
        }
    }
}

impl Channel {
    /// Parses a channel name; `known` says whether a symbol is a configured instrument.
    pub fn parse(name: &str, known: impl Fn(&str) -> bool) -> Result<Channel, ChannelError> {
        let symbol = |s: &str| {
            if known(s) {
                Ok(s.to_owned())
            } else {
                Err(ChannelError::UnknownSymbol(s.chars().take(64).collect()))
            }
        };
        let mut parts = name.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("notifications"), None, None) => Ok(Channel::Notifications),
            (Some("book"), Some(s), None) => Ok(Channel::Book(symbol(s)?)),
            (Some("trades"), Some(s), None) => Ok(Channel::Trades(symbol(s)?)),
            (Some("candles"), Some(s), Some(i)) => {
                let s = symbol(s)?;
                if INTERVALS.contains(&i) {
                    Ok(Channel::Candles(s, i.to_owned()))
                } else {
                    Err(ChannelError::UnknownInterval(i.chars().take(16).collect()))
                }
            }
            _ => Err(ChannelError::Unknown(name.chars().take(64).collect())),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Book(s) => write!(f, "book:{s}"),
            Channel::Trades(s) => write!(f, "trades:{s}"),
            Channel::Candles(s, i) => write!(f, "candles:{s}:{i}"),
            Channel::Notifications => f.write_str("notifications"),
        }
    }
}

/// What a client sends: `{"op":"subscribe","channels":[...]}` or `unsubscribe`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    /// `subscribe`, `unsubscribe` or `ping`.
    pub op: String,
    /// Channel names.
    #[serde(default)]
    pub channels: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form_and_refuses_the_rest() {
        let known = |s: &str| s == "BTC-USD";
        assert_eq!(
            Channel::parse("book:BTC-USD", known),
            Ok(Channel::Book("BTC-USD".into()))
        );
        assert_eq!(
            Channel::parse("candles:BTC-USD:1m", known).map(|c| c.to_string()),
            Ok("candles:BTC-USD:1m".into())
        );
        assert_eq!(
            Channel::parse("notifications", known),
            Ok(Channel::Notifications)
        );
        assert!(matches!(
            Channel::parse("book:XYZ", known),
            Err(ChannelError::UnknownSymbol(_))
        ));
        assert!(matches!(
            Channel::parse("candles:BTC-USD:5m", known),
            Err(ChannelError::UnknownInterval(_))
        ));
        for bad in [
            "",
            "book",
            "book:BTC-USD:x",
            "trades",
            "notifications:x",
            "x:y",
        ] {
            assert!(
                matches!(Channel::parse(bad, known), Err(ChannelError::Unknown(_))),
                "{bad}"
            );
        }
    }
}
