//! Reading a layout from text or a file.

use std::path::Path;

use super::TopicLayout;
use super::model::TopicsFile;
use crate::ConfigError;

/// Parses a topic layout from YAML text; `origin` names the source in errors. Fails only when the text is not
/// YAML of the expected shape: call [`TopicLayout::check`] for semantic problems.
pub fn parse_topics(yaml: &str, origin: &str) -> Result<TopicLayout, ConfigError> {
    let file: TopicsFile = serde_norway::from_str(yaml).map_err(|source| ConfigError::Parse {
        path: origin.to_owned(),
        source,
    })?;
    Ok(TopicLayout::new(file.topics))
}

/// Reads a topic layout file and refuses it if [`TopicLayout::check`] finds problems
/// ([`ConfigError::Layout`] lists them all).
pub fn load_topics(path: &Path) -> Result<TopicLayout, ConfigError> {
    let origin = path.display().to_string();
    let yaml = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: origin.clone(),
        source,
    })?;
    let layout = parse_topics(&yaml, &origin)?;
    layout.validate(&origin)?;
    Ok(layout)
}
