//! Topic configs whose values may be YAML strings, numbers or booleans, kept as the text the
//! broker expects.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Deserializes a map of topic configs whose values may be written as YAML strings, numbers or booleans
/// (`max.message.bytes: 2097152`), keeping each as the text the broker expects.
pub(super) fn scalar_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = BTreeMap::<String, ScalarText>::deserialize(deserializer)?;
    Ok(map.into_iter().map(|(key, value)| (key, value.0)).collect())
}

/// A scalar kept as text.
struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarTextVisitor)
    }
}

/// Visits a string, number or boolean.
struct ScalarTextVisitor;

impl Visitor<'_> for ScalarTextVisitor {
    type Value = ScalarText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<ScalarText, E> {
        Ok(ScalarText(value))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }
}
