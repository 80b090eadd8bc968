//! Differences found by `verify`: the first few printed as they are found (stderr, one line
//! each, naming topic/partition/offset or table/key), all of them counted per topic or table.

use std::collections::BTreeMap;

/// The differences of one `verify` run.
#[derive(Debug)]
pub struct Diffs {
    /// How many to print.
    limit: usize,
    /// Differences per topic or table (`topic trades`, `table candles`).
    counts: BTreeMap<String, u64>,
    total: u64,
}

impl Diffs {
    /// Prints at most `limit` differences.
    pub fn new(limit: usize) -> Self {
        Diffs {
            limit,
            counts: BTreeMap::new(),
            total: 0,
        }
    }

    /// One difference in `place` (`topic trades`, `table candles`); `detail` is made only if
    /// it is printed.
    pub fn add(&mut self, place: &str, detail: impl FnOnce() -> String) {
        self.total += 1;
        *self.counts.entry(place.to_owned()).or_default() += 1;
        if self.total as usize <= self.limit {
            eprintln!("differs: {}", detail());
        } else if self.total as usize == self.limit + 1 {
            eprintln!("… more differences are counted but not shown (--max-diffs)");
        }
    }

    /// How many differences were found.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Differences per place.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }
}

/// A short readable form of a record's value: the event it decodes to, or its text, cut to a
/// line.
pub fn show_value(bytes: &[u8]) -> String {
    let text = match tradestream_codec::avro::decode_event(bytes) {
        Ok(ev) => format!("{ev:?}"),
        Err(_) => {
            let lossy = String::from_utf8_lossy(bytes);
            if lossy.chars().all(|c| !c.is_control()) {
                format!("{lossy:?}")
            } else {
                format!("{} bytes", bytes.len())
            }
        }
    };
    cut(&text, 240)
}

/// `text` cut to `max` characters (marked with `…`).
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests;
