//! Tests of `redact`: what readers who may not see secrets are shown.

#[test]
fn values_lose_secrets_by_key_and_shape_but_keep_references() {
    let value = serde_json::json!({
        "botToken": "abc", "port": 1, "password": 123456,
        "nested": [{"apiKey": "${OPENAI_KEY}"}, "ghp_0123456789abcdefghij"],
        "plain": "hello",
    });
    assert_eq!(
        redact_value(&value),
        serde_json::json!({
            "botToken": REDACTED, "port": 1, "password": REDACTED,
            "nested": [{"apiKey": "${OPENAI_KEY}"}, REDACTED],
            "plain": "hello",
        })
    );
}

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
    let out = redact_lexically("{ token: \"abc", &HashSet::new());
    assert!(!out.contains("abc"), "{out}");
    let _ = redact_lexically(
        "/* open comment sk-1234567890abcdef1234567890abcdef12",
        &HashSet::new(),
    );
    let _ = redact_lexically("'\\", &HashSet::new());
    // Shown to readers: not at all.
    assert_eq!(redact_text("{ token: \"abc"), UNREADABLE);
}

#[test]
fn values_below_secret_keys_in_arrays_comments_urls_and_escapes_are_redacted() {
    let text = r#"{
  // old password: hunter22, token=zxcv9876
  secrets: { openai: "plainvalue1" },
  tokens: ["alpha-token-1", "beta-token-2"],
  gateway: { auth: { password: 31415926 } },
  "\u0074oken": "escaped-key-value",
  hooks: { url: "https://bot:s3cret@hooks.example.com/x" },
  auth: { pins: { password: 0x1E240 } },
  secrets2: { short: "ab\"c\\d" },
  channels: { slack: { webhookUrl: "https://hooks.slack.com/services/T0/B0/abc" } },
  // plainvalue1 quoted again in a comment
}
"#;
    let out = redact_text(text);
    for secret in [
        "hunter22",
        "zxcv9876",
        "plainvalue1",
        "alpha-token-1",
        "beta-token-2",
        "31415926",
        "escaped-key-value",
        "0x1E240",
        "ab\\\"c",
        "s3cret",
        "services/T0",
    ] {
        assert!(!out.contains(secret), "{secret} in\n{out}");
    }
    assert!(out.contains("// old password:"), "{out}");
    assert_eq!(
        out.lines().count(),
        text.lines().count(),
        "the layout stays"
    );
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
        let _ = redact_lexically(&text, &HashSet::new());
        let _ = crate::openclaw::document::parse(&text);
    }
}
