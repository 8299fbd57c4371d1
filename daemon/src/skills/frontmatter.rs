//! Reading a skill's `SKILL.md` frontmatter: YAML between `---` lines, with
//! `metadata` as a YAML mapping or a JSON5 string, and OpenClaw's
//! requirements under `metadata.openclaw` (legacy: `clawdbot`).
//!
//! Invariant: a frontmatter that is missing, larger than
//! [`MAX_FRONTMATTER_BYTES`], not valid YAML, uses aliases (no billion
//! laughs), nests deeper than [`MAX_DEPTH`], or lacks a usable `name` and
//! `description` is refused with the reason; the parsers never see more.

use serde_json::{Map, Value};
use yaml_rust2::{
    Yaml, YamlLoader,
    parser::{Event, Parser},
};

use super::error::SkillError;

/// Largest frontmatter read.
pub const MAX_FRONTMATTER_BYTES: usize = 16 * 1024;
/// Deepest nesting of mappings and lists in it.
pub const MAX_DEPTH: usize = 32;

/// One `install` entry of OpenClaw's metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstallSpec {
    /// `brew`, `node`, `go`, `uv`, `download`, `apt`, `npm`, … as written.
    pub kind: String,
    /// What it installs: formula, package, module or URL.
    pub target: String,
}

/// What a skill's frontmatter says.
#[derive(Debug, Clone, PartialEq)]
pub struct Frontmatter {
    /// `name` (also the folder it is installed as).
    pub name: String,
    /// `description`.
    pub description: String,
    /// The whole frontmatter as JSON (for display).
    pub json: Value,
    /// `requires.bins` and `requires.anyBins`.
    pub bins: Vec<String>,
    /// `requires.env` and `primaryEnv`.
    pub env: Vec<String>,
    /// `requires.config`.
    pub config: Vec<String>,
    /// `always: true`.
    pub always: bool,
    /// `install[]`.
    pub install: Vec<InstallSpec>,
    /// 1-based line of SKILL.md where the frontmatter ends.
    pub end_line: usize,
}

/// Walks the YAML events one at a time (the parser's token loop does not
/// recurse) and refuses aliases, a second document and nesting deeper than
/// [`MAX_DEPTH`] before anything is built.
fn guard(text: &str) -> Result<(), SkillError> {
    let mut parser = Parser::new_from_str(text);
    let (mut depth, mut documents) = (0usize, 0usize);
    loop {
        let (event, _) = parser
            .next_token()
            .map_err(|err| refused(format!("frontmatter is not valid YAML: {err}")))?;
        match event {
            Event::StreamEnd => return Ok(()),
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(refused("the frontmatter must be one YAML document"));
                }
            }
            Event::Alias(_) => {
                return Err(refused(
                    "YAML aliases (`*name`) are not allowed in the frontmatter",
                ));
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(refused(format!(
                        "frontmatter nested deeper than {MAX_DEPTH} levels"
                    )));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
}

/// Most `[` and `{` in a JSON5 `metadata` string: an upper bound on its
/// nesting, whatever quotes and comments it holds.
const MAX_JSON5_BRACKETS: usize = 512;

fn refused(why: impl std::fmt::Display) -> SkillError {
    SkillError::BadArchive(format!("SKILL.md: {why}"))
}

/// The frontmatter text of `skill_md` and the line it ends on.
fn split(skill_md: &[u8]) -> Result<(&str, usize), SkillError> {
    let text = std::str::from_utf8(skill_md).map_err(|_| refused("not UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return Err(refused(
            "does not start with a `---` frontmatter block (name, description)",
        ));
    };
    let mut offset = 0;
    for (index, line) in rest.split_inclusive('\n').enumerate() {
        if line.trim_end() == "---" {
            return Ok((&rest[..offset], index + 2));
        }
        offset += line.len();
        if offset > MAX_FRONTMATTER_BYTES {
            break;
        }
    }
    Err(refused(format!(
        "no closing `---` within the first {MAX_FRONTMATTER_BYTES} bytes of the frontmatter"
    )))
}

/// Most nested `[`/`{` in `text`, outside quoted strings (conservative).
pub(crate) fn bracket_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut quote, mut escaped) = (0usize, 0usize, None, false);
    for c in text.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' | '{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    deepest
}

fn to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(text.clone()), Value::Number),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let key = match key {
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => continue,
                };
                out.insert(key, to_json(value));
            }
            Value::Object(out)
        }
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Whether `name` can be a skill's folder name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Parses the frontmatter of `skill_md`.
pub fn parse(skill_md: &[u8]) -> Result<Frontmatter, SkillError> {
    let (text, end_line) = split(skill_md)?;
    guard(text)?;
    let docs = YamlLoader::load_from_str(text)
        .map_err(|err| refused(format!("frontmatter is not valid YAML: {err}")))?;
    let mut json = docs.first().map(to_json).unwrap_or(Value::Null);
    let Some(top) = json.as_object_mut() else {
        return Err(refused(
            "the frontmatter must be a mapping with name and description",
        ));
    };
    if let Some(Value::String(raw)) = top.get("metadata") {
        let brackets = raw.chars().filter(|c| matches!(c, '[' | '{')).count();
        if brackets > MAX_JSON5_BRACKETS || bracket_depth(raw) > MAX_DEPTH {
            return Err(refused(format!(
                "metadata nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let metadata: Value = json5::from_str(raw).map_err(|err| {
            refused(format!(
                "metadata is neither a mapping nor valid JSON5: {err}"
            ))
        })?;
        top.insert("metadata".to_owned(), metadata);
    }
    let name = top
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned();
    if !valid_name(&name) {
        return Err(refused(
            "`name` must be 1–64 characters of a–z, 0–9, `-`, `_` or `.`, starting with a letter or digit",
        ));
    }
    let description = top
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned();
    if description.is_empty() {
        return Err(refused("`description` is missing or empty"));
    }
    let openclaw = top
        .get("metadata")
        .and_then(|m| m.get("openclaw").or_else(|| m.get("clawdbot")))
        .cloned()
        .unwrap_or(Value::Null);
    let requires = openclaw.get("requires");
    let mut bins = strings(requires.and_then(|r| r.get("bins")));
    bins.extend(strings(requires.and_then(|r| r.get("anyBins"))));
    let mut env = strings(requires.and_then(|r| r.get("env")));
    env.extend(strings(openclaw.get("primaryEnv")));
    env.dedup();
    let install = match openclaw.get("install") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| InstallSpec {
                kind: item
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
                target: ["formula", "package", "module", "url", "id"]
                    .iter()
                    .find_map(|key| item.get(*key).and_then(Value::as_str))
                    .unwrap_or_default()
                    .to_owned(),
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Frontmatter {
        name,
        description,
        bins,
        env,
        config: strings(requires.and_then(|r| r.get("config"))),
        always: openclaw
            .get("always")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        install,
        end_line,
        json,
    })
}

#[cfg(test)]
#[path = "frontmatter_tests.rs"]
mod tests;
