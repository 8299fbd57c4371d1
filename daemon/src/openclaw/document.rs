//! One text of `openclaw.json` and what it parses to.
//!
//! Invariant: a text larger than [`MAX_CONFIG_BYTES`] or nested deeper than
//! [`MAX_DEPTH`] is refused before the parser sees it (the parser recurses,
//! and the nesting is counted as the parser reads strings and comments); a
//! parse error names its line and column (both from 1). A text's version
//! is named by `versions::Versioner`.

use serde_json::Value;

/// The largest config text occcd reads or writes.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// The deepest nesting of objects and arrays accepted.
pub const MAX_DEPTH: usize = 64;

/// A config text that parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDocument {
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

/// The deepest nesting of `{`/`[` in `text` outside strings and comments,
/// as JSON5 reads them — never less than the parser would recurse: escapes
/// and line continuations are read as the parser (the `json5` crate) reads
/// them; a string also ends at a raw `\n` or `\r` (where the parser stops
/// with an error, so nothing after it is parsed), a line comment at any
/// line break.
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    let is_break = |c: char| matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}');
    while let Some(c) = chars.next() {
        match c {
            '{' | '[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            '"' | '\'' => {
                while let Some(inner) = chars.next() {
                    // The parser allows U+2028 and U+2029 in strings.
                    if inner == c || inner == '\n' || inner == '\r' {
                        break;
                    }
                    if inner == '\\' {
                        // An escaped character, or a line continuation
                        // (`\` and a line break, `\r\n` being one).
                        if chars.next() == Some('\r') {
                            chars.next_if_eq(&'\n');
                        }
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                while chars.next_if(|next| !is_break(*next)).is_some() {}
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut star = false;
                for inner in chars.by_ref() {
                    if star && inner == '/' {
                        break;
                    }
                    star = inner == '*';
                }
            }
            _ => {}
        }
    }
    deepest
}

/// Parses `text`, refusing oversized or over-deep input unread.
pub fn parse(text: &str) -> Result<ConfigDocument, ConfigParseError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigParseError::TooLarge(text.len()));
    }
    if nesting_depth(text) > MAX_DEPTH {
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
    Ok(ConfigDocument { value })
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
    fn json5_with_comments_and_trailing_commas_parses() {
        let doc = parse(SAMPLE).unwrap();
        assert_eq!(doc.value["gateway"]["bind"], "loopback");
        let reworded = SAMPLE.replace("never lan here", "never LAN here");
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

    #[test]
    fn quotes_and_brackets_in_comments_and_strings_neither_hide_nor_invent_depth() {
        // An apostrophe in a comment does not open a string that would hide
        // what follows from the count (the parser would recurse into it).
        let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for hiding in [
            format!("{{ // it's\n a: {nested} }}"),
            format!("{{ /* \" */ a: {nested} }}"),
            format!("{{ a: \"x\\\n\", b: {nested} }}"),
            format!("{{ a: 'unterminated\n b: {nested} }}"),
            format!("{{ a: \"x{}\", b: {nested} }}", '\u{2028}'),
        ] {
            assert_eq!(
                parse(&hiding),
                Err(ConfigParseError::TooDeep),
                "{}",
                &hiding[..30]
            );
        }
        // Brackets inside strings and comments are not nesting.
        let many = "[".repeat(100);
        let text = format!("{{ // {many}\n /* {many} */ a: \"{many}\", b: '{many}' }}");
        assert_eq!(parse(&text).unwrap().value["a"], many);
    }
}
