//! Secrets out of a config text for readers who may not see them.
//!
//! Invariant: the text keeps its layout — comments, order, whitespace — and
//! every string literal that is the value of a secret-named key (token,
//! password, secret, API or private key, credential) or looks like a secret
//! itself (a known token prefix, a PEM block, a long mixed run of key
//! characters) is replaced by `"[redacted]"`; such runs inside comments are
//! replaced too. `${VAR}` references are not secrets and stay readable.

/// What a redacted value reads as.
pub const REDACTED: &str = "[redacted]";

/// Key-name fragments (lower case, without `_` or `-`) that mark a secret.
const SECRET_KEY_PARTS: &[&str] = &[
    "token",
    "password",
    "passwd",
    "secret",
    "apikey",
    "privatekey",
    "accesskey",
    "credential",
    "cookie",
    "bearer",
];

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

/// `${NAME}`: a substitution OpenClaw resolves from its environment.
fn is_reference(value: &str) -> bool {
    value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// `text` with secrets replaced (see the module invariant). Text that is not
/// valid JSON5 is still redacted as far as it can be read.
#[must_use]
pub fn redact_text(text: &str) -> String {
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
                out.push_str(&redact_words(&text[start..end]));
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

/// `comment` with every secret-looking word replaced.
fn redact_words(comment: &str) -> String {
    let mut out = String::with_capacity(comment.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if looks_secret(word) {
            out.push_str(REDACTED);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in comment.chars() {
        if c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '(' | ')') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
  // gateway token was sk-live1234567890abcdef1234567890abcdef before rotation
  gateway: { auth: { mode: "token", token: "a9f3e1c2b4d5", password: 'hunter2' } },
  "models": { "providers": { "openai": { "apiKey": "${OPENAI_API_KEY}", baseUrl: "https://api.openai.com/v1" } } },
  channels: { slack: { botToken: "xoxb-123-456-abc", dmPolicy: "pairing" } },
  notes: "ghp_0123456789abcdefghijABCDEFGHIJ012345",
  /* private_key: -----BEGIN */
  tools: { web: { search: { api_key: "plain" } } },
}"#;

    #[test]
    fn secrets_go_by_key_name_and_by_shape_and_the_layout_stays() {
        let out = redact_text(SAMPLE);
        for gone in [
            "a9f3e1c2b4d5",
            "hunter2",
            "xoxb-123-456-abc",
            "ghp_0123456789",
            "sk-live",
            "plain",
        ] {
            assert!(!out.contains(gone), "{gone} left in:\n{out}");
        }
        for kept in [
            "mode: \"token\"",
            "${OPENAI_API_KEY}",
            "https://api.openai.com/v1",
            "dmPolicy: \"pairing\"",
            "// gateway token was",
            "before rotation",
            "password: '[redacted]'",
        ] {
            assert!(out.contains(kept), "{kept} missing from:\n{out}");
        }
        assert_eq!(out.lines().count(), SAMPLE.lines().count());
        let parsed = crate::openclaw::document::parse(&out).unwrap();
        assert_eq!(parsed.value["gateway"]["auth"]["token"], REDACTED);
    }

    #[test]
    fn key_names_and_shapes() {
        for key in [
            "token",
            "botToken",
            "API_KEY",
            "apiKey",
            "private-key",
            "clientSecret",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["mode", "bind", "keyboard", "tokens_per_minute_limit_name"] {
            let secret = is_secret_key(key);
            assert_eq!(secret, key.contains("token"), "{key}");
        }
        assert!(looks_secret("AKIAIOSFODNN7EXAMPLE"));
        assert!(!looks_secret("${GATEWAY_TOKEN}"));
        assert!(!looks_secret("loopback"));
        assert!(!looks_secret("https://example.com/a/long/path/with/words"));
    }

    #[test]
    fn unterminated_input_is_redacted_as_far_as_it_reads() {
        let out = redact_text("{ token: \"abc");
        assert!(!out.contains("abc"), "{out}");
        let _ = redact_text("/* open comment sk-1234567890abcdef1234567890abcdef12");
        let _ = redact_text("'\\");
    }

    #[test]
    fn any_text_is_redacted_without_panicking() {
        let alphabet: Vec<char> = "\"'\\/*:{}[], \nab0é€$_-tokenk".chars().collect();
        let mut state = 0x2545_f491_u32;
        for _ in 0..20_000 {
            let mut text = String::new();
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            for _ in 0..(state >> 26) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                text.push(alphabet[state as usize % alphabet.len()]);
            }
            let _ = redact_text(&text);
            let _ = crate::openclaw::document::parse(&text);
        }
    }
}
