//! One text of `openclaw.json`: its version and what it parses to.
//!
//! Invariant: a text larger than [`MAX_CONFIG_BYTES`] or nested deeper than
//! [`MAX_DEPTH`] is refused before the parser sees it (the parser recurses);
//! a parse error names its line and column (both from 1); the version is the
//! SHA-256 of the exact bytes, so any edit — even of a comment — changes it.

use serde_json::Value;

use crate::skills::frontmatter::bracket_depth;

/// The largest config text occcd reads or writes.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// The deepest nesting of objects and arrays accepted.
pub const MAX_DEPTH: usize = 64;

/// A config text that parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDocument {
    /// Hex SHA-256 of the text's bytes.
    pub version: String,
    /// What it parses to (JSON5: comments and trailing commas allowed).
    pub value: Value,
}

/// Why a text is not a config occcd accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigParseError {
    /// Larger than [`MAX_CONFIG_BYTES`].
    #[error("the config is {0} bytes; at most {MAX_CONFIG_BYTES} are accepted")]
    TooLarge(usize),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("the config nests objects and arrays deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Not JSON5.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// From 1.
        line: usize,
        /// From 1.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// JSON5, but not an object at the top.
    #[error("the config must be one JSON5 object at the top")]
    NotAnObject,
}

/// The version of `text`: hex SHA-256 of its bytes.
#[must_use]
pub fn version_of(text: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text))
}

/// Parses `text`, refusing oversized or over-deep input unread.
pub fn parse(text: &str) -> Result<ConfigDocument, ConfigParseError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigParseError::TooLarge(text.len()));
    }
    if bracket_depth(text) > MAX_DEPTH {
        return Err(ConfigParseError::TooDeep);
    }
    let value: Value = json5::from_str(text).map_err(|err| {
        let (line, column) = err
            .position()
            .map_or((1, 1), |at| (at.line + 1, at.column + 1));
        let message = err
            .code()
            .map_or_else(|| err.to_string(), |code| code.to_string());
        ConfigParseError::Syntax {
            line,
            column,
            message,
        }
    })?;
    if !value.is_object() {
        return Err(ConfigParseError::NotAnObject);
    }
    Ok(ConfigDocument {
        version: version_of(text.as_bytes()),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"// OpenClaw gateway
{
  gateway: {
    bind: "loopback", // never lan here
    auth: { mode: "token", token: "${OPENCLAW_GATEWAY_TOKEN}" },
  },
  /* agents */
  agents: { defaults: { sandbox: { mode: "non-main" } } },
}
"#;

    #[test]
    fn json5_with_comments_and_trailing_commas_parses_and_keeps_its_version() {
        let doc = parse(SAMPLE).unwrap();
        assert_eq!(doc.value["gateway"]["bind"], "loopback");
        assert_eq!(doc.version, version_of(SAMPLE.as_bytes()));
        assert_eq!(doc.version.len(), 64);
        let reworded = SAMPLE.replace("never lan here", "never LAN here");
        assert_ne!(
            parse(&reworded).unwrap().version,
            doc.version,
            "a comment is an edit"
        );
        assert_eq!(parse(&reworded).unwrap().value, doc.value);
    }

    #[test]
    fn errors_name_line_and_column_from_one() {
        let broken = "{\n  gateway: {\n    bind: \"loopback\" mode: 1,\n  },\n}";
        match parse(broken) {
            Err(ConfigParseError::Syntax { line, column, .. }) => {
                assert_eq!(line, 3);
                assert!(column > 1, "{column}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse("[1, 2]"), Err(ConfigParseError::NotAnObject));
        assert!(matches!(
            parse(""),
            Err(ConfigParseError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn oversized_and_over_deep_texts_are_refused_unparsed() {
        let big = format!("{{a: \"{}\"}}", "x".repeat(MAX_CONFIG_BYTES));
        assert_eq!(parse(&big), Err(ConfigParseError::TooLarge(big.len())));
        let deep = format!("{{a: {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(&deep), Err(ConfigParseError::TooDeep));
        let fine = format!("{{a: {}{}}}", "[".repeat(60), "]".repeat(60));
        assert!(parse(&fine).is_ok());
    }
}
