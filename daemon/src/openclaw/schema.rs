//! The schema check of a parsed `openclaw.json`: the shipped JSON Schema
//! (`openclaw.schema.json`, OpenClaw's keys as of
//! [`SCHEMA_RELEASE`](super::policy::SCHEMA_RELEASE)) applied with a small
//! validator, each error named by its JSON path (`$.gateway.bind`).
//!
//! Invariant: the validator knows exactly the keywords `type`, `enum`,
//! `properties`, `additionalProperties`, `items`, `minimum` and `maximum`
//! (a unit test holds the shipped schema to them, so no keyword is silently
//! ignored); unknown top-level keys are refused, as OpenClaw refuses them;
//! at most [`MAX_SCHEMA_ERRORS`] errors are reported, and the walk is
//! bounded by the parser's nesting limit.

use std::sync::OnceLock;

use serde_json::Value;

/// The shipped schema's text.
pub const SHIPPED_SCHEMA: &str = include_str!("openclaw.schema.json");

/// Most schema errors reported for one text.
pub const MAX_SCHEMA_ERRORS: usize = 50;

/// One place where the text does not match the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// JSON path, e.g. `$.gateway.bind` or `$.plugins.allow[2]`.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

/// The shipped schema, parsed once. `None` only if the shipped text is not
/// JSON, which a unit test rules out.
fn shipped() -> Option<&'static Value> {
    static SCHEMA: OnceLock<Option<Value>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| serde_json::from_str(SHIPPED_SCHEMA).ok())
        .as_ref()
}

/// Every place `config` breaks the shipped schema (at most
/// [`MAX_SCHEMA_ERRORS`]), objects walked in key order.
#[must_use]
pub fn check(config: &Value) -> Vec<SchemaError> {
    let mut errors = Vec::new();
    match shipped() {
        Some(schema) => walk(schema, config, &mut "$".to_owned(), &mut errors),
        None => errors.push(SchemaError {
            path: "$".to_owned(),
            message: "occcd's shipped schema does not parse; no config is accepted".to_owned(),
        }),
    }
    errors
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(value: &Value, wanted: &str) -> bool {
    let actual = type_name(value);
    actual == wanted || (wanted == "number" && actual == "integer")
}

fn walk(schema: &Value, value: &Value, path: &mut String, errors: &mut Vec<SchemaError>) {
    if errors.len() >= MAX_SCHEMA_ERRORS {
        return;
    }
    let mut fail = |message: String| {
        if errors.len() < MAX_SCHEMA_ERRORS {
            errors.push(SchemaError {
                path: path.clone(),
                message,
            });
        }
    };
    if let Some(wanted) = schema.get("type") {
        let names: Vec<&str> = match wanted {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.iter().any(|name| has_type(value, name)) {
            fail(format!(
                "expected {}, found {}",
                names.join(" or "),
                type_name(value)
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let listed: Vec<String> = allowed.iter().map(Value::to_string).collect();
        fail(format!("must be one of {}", listed.join(", ")));
        return;
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64)
            && number < minimum
        {
            fail(format!("must be at least {minimum}"));
        }
        if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64)
            && number > maximum
        {
            fail(format!("must be at most {maximum}"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (key, child) in object {
            let known = properties.and_then(|p| p.get(key));
            let child_schema = match (known, additional) {
                (Some(known), _) => Some(known),
                (None, Some(Value::Bool(false))) => {
                    let at = path.len();
                    push_key(path, key);
                    if errors.len() < MAX_SCHEMA_ERRORS {
                        errors.push(SchemaError {
                            path: path.clone(),
                            message: format!(
                                "unknown key {key:?}: OpenClaw would refuse to start (keys as of OpenClaw {})",
                                super::policy::SCHEMA_RELEASE
                            ),
                        });
                    }
                    path.truncate(at);
                    None
                }
                (None, Some(extra @ Value::Object(_))) => Some(extra),
                (None, _) => None,
            };
            if let Some(child_schema) = child_schema {
                let at = path.len();
                push_key(path, key);
                walk(child_schema, child, path, errors);
                path.truncate(at);
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            let at = path.len();
            path.push_str(&format!("[{index}]"));
            walk(items, item, path, errors);
            path.truncate(at);
        }
    }
}

/// `.key` when it is a plain name, `["key"]` otherwise.
fn push_key(path: &mut String, key: &str) {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::String(key.to_owned()).to_string());
        path.push(']');
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KNOWN_KEYWORDS: &[&str] = &[
        "$schema",
        "$id",
        "title",
        "description",
        "type",
        "enum",
        "properties",
        "additionalProperties",
        "items",
        "minimum",
        "maximum",
    ];

    fn keywords_in(schema: &Value, found: &mut Vec<String>) {
        let Some(object) = schema.as_object() else {
            return;
        };
        for (keyword, child) in object {
            found.push(keyword.clone());
            match keyword.as_str() {
                "properties" => {
                    for property in child.as_object().into_iter().flat_map(|p| p.values()) {
                        keywords_in(property, found);
                    }
                }
                "items" | "additionalProperties" => keywords_in(child, found),
                _ => {}
            }
        }
    }

    #[test]
    fn the_shipped_schema_parses_and_uses_only_keywords_the_validator_knows() {
        let schema = shipped().expect("the shipped schema is JSON");
        let mut found = Vec::new();
        keywords_in(schema, &mut found);
        let unknown: Vec<_> = found
            .iter()
            .filter(|k| !KNOWN_KEYWORDS.contains(&k.as_str()))
            .collect();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(schema["additionalProperties"], json!(false));
    }

    #[test]
    fn errors_name_their_json_path() {
        let config = json!({
            "gateway": {"bind": "everywhere", "port": 70000, "auth": {"mode": "none"}},
            "plugins": {"allow": ["a", 3]},
            "channels": {"telegram": {"dmPolicy": "opne"}},
            "agent": {},
            "my key": 1,
        });
        let errors: Vec<(String, String)> = check(&config)
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect();
        let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$.agent",
                "$.channels.telegram.dmPolicy",
                "$.gateway.bind",
                "$.gateway.port",
                "$[\"my key\"]",
                "$.plugins.allow[1]",
            ],
            "{errors:?}"
        );
        assert!(errors[0].1.contains("unknown key \"agent\""), "{errors:?}");
        assert!(
            errors[2].1.contains("must be one of \"loopback\""),
            "{errors:?}"
        );
        assert_eq!(errors[3].1, "must be at most 65535");
        assert_eq!(errors[5].1, "expected string, found integer");
    }

    #[test]
    fn a_valid_config_passes_and_unknown_nested_keys_are_openclaws_to_judge() {
        let config = json!({
            "$include": ["./channels.json5"],
            "gateway": {"bind": "loopback", "port": 18789, "auth": {"mode": "token", "token": "${GW}"}},
            "agents": {"defaults": {"workspace": "~/w", "sandbox": {"mode": "all"}}},
            "tools": {"elevated": {"enabled": false, "allowFrom": {"whatsapp": ["+1555"]}}},
            "channels": {"whatsapp": {"dmPolicy": "pairing", "allowFrom": ["+1555"]}},
        });
        assert_eq!(check(&config), []);
    }

    #[test]
    fn errors_are_bounded() {
        let many: serde_json::Map<String, Value> =
            (0..200).map(|i| (format!("k{i}"), json!(1))).collect();
        assert_eq!(check(&Value::Object(many)).len(), MAX_SCHEMA_ERRORS);
    }
}
