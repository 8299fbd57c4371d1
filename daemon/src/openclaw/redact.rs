//! Secrets out of a config text for readers who may not see them.
//!
//! Invariant: the text keeps its layout — comments, order, whitespace — and
//! every string literal that is the value of a secret-named key (token,
//! pass…, pwd, secret, API or private key, credential, authorization,
//! webhook…) or looks like a secret itself (a known token prefix, a PEM
//! block, a URL with credentials, a long mixed run of key characters) is
//! replaced by `"[redacted]"`; such runs, and the word after a secret-named
//! word, inside comments are replaced too. Then, from the parsed document,
//! every string or number anywhere below a secret-named key (a `secrets`
//! block, a list of tokens) and every secret-looking string is replaced
//! wherever it occurs in the text. A text that does not parse is not shown
//! at all (occcd cannot tell its secrets apart). `${VAR}` references are not
//! secrets and stay readable.

use std::collections::HashSet;

/// What a redacted value reads as.
pub const REDACTED: &str = "[redacted]";

/// Key-name fragments (lower case, without `_` or `-`) that mark a secret.
const SECRET_KEY_PARTS: &[&str] = &[
    "token",
    "pass",
    "pwd",
    "secret",
    "apikey",
    "privatekey",
    "accesskey",
    "credential",
    "cookie",
    "bearer",
    "authorization",
    "webhook",
];

/// What a text that does not parse reads as for readers who may not see
/// secrets.
pub const UNREADABLE: &str = "// [redacted: this text does not parse, so occcd cannot tell its secrets apart; an elevated admin sees it]\n";

/// Shortest secret value recognised as a word of a comment.
const MIN_REPLACED_CHARS: usize = 4;

/// Prefixes of well-known token formats.
const SECRET_PREFIXES: &[&str] = &[
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "ghp_",
    "gho_",
    "ghs_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
    "xapp-",
    "glpat-",
    "AKIA",
    "ASIA",
    "AIza",
    "-----BEGIN",
];

/// True when a key named `key` holds a secret.
#[must_use]
pub fn is_secret_key(key: &str) -> bool {
    let folded: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_KEY_PARTS.iter().any(|part| folded.contains(part))
}

/// True when `value` looks like a secret whatever its key.
#[must_use]
pub fn looks_secret(value: &str) -> bool {
    if is_reference(value) {
        return false;
    }
    if SECRET_PREFIXES
        .iter()
        .any(|prefix| value.starts_with(prefix))
        || value.starts_with("Bearer ")
        || has_url_credentials(value)
    {
        return true;
    }
    let keyish = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '/' | '='));
    let letters = value.chars().any(|c| c.is_ascii_alphabetic());
    let digits = value.chars().any(|c| c.is_ascii_digit());
    value.len() >= 32 && keyish && letters && digits
}

/// `scheme://user:password@host…`.
fn has_url_credentials(value: &str) -> bool {
    value
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .is_some_and(|authority| {
            authority
                .rsplit_once('@')
                .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        })
}

/// `${NAME}`: a substitution OpenClaw resolves from its environment.
fn is_reference(value: &str) -> bool {
    value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// `value` with secrets replaced: every string or number below a
/// secret-named key and every string that looks secret reads [`REDACTED`].
#[must_use]
pub fn redact_value(value: &serde_json::Value) -> serde_json::Value {
    redact_value_below(value, false)
}

fn redact_value_below(value: &serde_json::Value, secret: bool) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) if (secret && !is_reference(text)) || looks_secret(text) => {
            Value::String(REDACTED.to_owned())
        }
        Value::Number(_) if secret => Value::String(REDACTED.to_owned()),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| redact_value_below(item, secret))
                .collect(),
        ),
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, child)| {
                    (
                        key.clone(),
                        redact_value_below(child, secret || is_secret_key(key)),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every string and number below a secret-named key, and every
/// secret-looking string, in `value` (numbers as JSON writes them).
fn secret_values(value: &serde_json::Value, secret: bool, found: &mut HashSet<String>) {
    use serde_json::Value;
    match value {
        Value::String(text) if (secret && !is_reference(text)) || looks_secret(text) => {
            found.insert(text.clone());
        }
        Value::Number(number) if secret => {
            found.insert(number.to_string());
        }
        Value::Array(items) => {
            for item in items {
                secret_values(item, secret, found);
            }
        }
        Value::Object(object) => {
            for (key, child) in object {
                secret_values(child, secret || is_secret_key(key), found);
            }
        }
        _ => {}
    }
}

/// `text` with secrets replaced (see the module invariant); [`UNREADABLE`]
/// when it does not parse. One pass: each literal is decoded (escapes and
/// all) and looked up among the document's secret values.
#[must_use]
pub fn redact_text(text: &str) -> String {
    if text.trim().is_empty() {
        return text.to_owned();
    }
    let Ok(document) = super::document::parse(text) else {
        return UNREADABLE.to_owned();
    };
    let mut secrets = HashSet::new();
    secret_values(&document.value, false, &mut secrets);
    redact_lexically(text, &secrets)
}

/// True when the number token `token` is one of `secrets`.
fn secret_number(token: &str, secrets: &HashSet<String>) -> bool {
    json5::from_str::<serde_json::Value>(token)
        .is_ok_and(|value| secrets.contains(&value.to_string()))
}

/// `text` with secrets replaced by what can be read without parsing (key
/// names, shapes, comments) or is one of `secrets` (decoded values); as far
/// as it reads when it is not valid JSON5.
fn redact_lexically(text: &str, secrets: &HashSet<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    // The last key seen, and whether the next literal is its value.
    let (mut last_key, mut after_colon) = (String::new(), false);
    while let Some((start, c)) = chars.next() {
        match c {
            '"' | '\'' => {
                let (end, closed) = string_end(text, start, c);
                let literal = &text[start..end];
                // Quotes are one byte; an unterminated literal runs to the end.
                let inner = &text[start + 1..if closed { end - 1 } else { end }];
                while chars.peek().is_some_and(|(at, _)| *at < end) {
                    chars.next();
                }
                let is_key = text[end..].trim_start().starts_with(':') && !after_colon;
                if is_key {
                    last_key = inner.to_owned();
                    out.push_str(literal);
                } else if (after_colon && is_secret_key(&last_key) && !is_reference(inner))
                    || looks_secret(inner)
                    || (closed
                        && json5::from_str::<String>(literal)
                            .is_ok_and(|decoded| secrets.contains(&decoded)))
                {
                    out.push(c);
                    out.push_str(REDACTED);
                    out.push(c);
                } else {
                    out.push_str(literal);
                }
                after_colon = false;
            }
            '/' if text[start..].starts_with("//") || text[start..].starts_with("/*") => {
                let end = if text[start..].starts_with("//") {
                    text[start..].find('\n').map_or(text.len(), |n| start + n)
                } else {
                    text[start + 2..]
                        .find("*/")
                        .map_or(text.len(), |n| start + 2 + n + 2)
                };
                out.push_str(&redact_words(&text[start..end], secrets));
                while chars.peek().is_some_and(|(at, _)| *at < end) {
                    chars.next();
                }
            }
            ':' => {
                after_colon = true;
                out.push(c);
            }
            ',' | '{' | '}' | '[' | ']' => {
                after_colon = false;
                out.push(c);
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let end = text[start..]
                    .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '$'))
                    .map_or(text.len(), |n| start + n);
                let word = &text[start..end];
                if text[end..].trim_start().starts_with(':') && !after_colon {
                    last_key = word.to_owned();
                } else {
                    after_colon = false;
                }
                out.push_str(word);
                while chars.peek().is_some_and(|(at, _)| *at < end) {
                    chars.next();
                }
            }
            c if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => {
                let end = text[start..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '+' | '-')))
                    .map_or(text.len(), |n| start + n);
                let token = &text[start..end];
                if (after_colon && is_secret_key(&last_key)) || secret_number(token, secrets) {
                    out.push_str(REDACTED);
                } else {
                    out.push_str(token);
                }
                after_colon = false;
                while chars.peek().is_some_and(|(at, _)| *at < end) {
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Where the string literal opened by `quote` at `start` ends (one past the
/// closing quote), and whether it was closed (else: the end of the text).
fn string_end(text: &str, start: usize, quote: char) -> (usize, bool) {
    let mut escaped = false;
    for (offset, c) in text[start + 1..].char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return (start + 1 + offset + c.len_utf8(), true);
        }
    }
    (text.len(), false)
}

/// `comment` with every secret-looking word, and the word after a
/// secret-named one and `:` or `=` (`password: hunter2`, `token=abc`),
/// replaced.
fn redact_words(comment: &str, secrets: &HashSet<String>) -> String {
    let mut out = String::with_capacity(comment.len());
    let mut word = String::new();
    // The last word was secret-named; armed once `:` or `=` follows it.
    let (mut secret_name, mut armed) = (false, false);
    for c in comment.chars().map(Some).chain(std::iter::once(None)) {
        let separator = c.is_none_or(|c| {
            c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '(' | ')' | ':' | '=')
        });
        if !separator {
            word.extend(c);
            continue;
        }
        if !word.is_empty() {
            let bare = word.trim_matches(|c: char| matches!(c, '.' | '!' | '?' | '`'));
            let known = bare.chars().count() >= MIN_REPLACED_CHARS && secrets.contains(bare);
            if armed || known || looks_secret(&word) {
                out.push_str(REDACTED);
                (secret_name, armed) = (false, false);
            } else {
                out.push_str(&word);
                secret_name = is_secret_key(word.trim_matches(|c: char| !c.is_alphanumeric()));
                armed = false;
            }
            word.clear();
        }
        if let Some(c) = c {
            if secret_name && matches!(c, ':' | '=') {
                armed = true;
            } else if !c.is_whitespace() && !matches!(c, '"' | '\'') {
                secret_name = false;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
