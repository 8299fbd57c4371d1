//! Static risk assessment of a skill: the rules of `rules.rs` over every
//! file's bytes and over what the frontmatter declares, each signal with
//! its file, line and excerpt, and the level they add up to.
//!
//! Invariant: deterministic (files in path order, rules in table order,
//! matches in file order); every file is scanned, whatever its name or
//! extension — SKILL.md, shell, Python, extensionless and binary files
//! alike; signals are bounded (per rule and file, and in all) and excerpts
//! are short and free of control characters.

use regex::bytes::{Regex, RegexSet};

use super::{
    frontmatter::Frontmatter,
    rules::{Level, PACKAGE_KINDS, TEXT_RULES, declared_rules, file_rules, secret_like},
    tree::{SkillFile, SkillTree},
};

/// Most signals of one rule in one file, and in all.
const MAX_PER_RULE_AND_FILE: usize = 5;
const MAX_SIGNALS: usize = 200;
/// Longest excerpt, in characters.
const MAX_EXCERPT_CHARS: usize = 160;

/// One reason a skill is risky.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signal {
    /// The rule's id.
    pub rule: String,
    /// The rule's level.
    pub level: Level,
    /// The file (relative path).
    pub file: String,
    /// 1-based line (0: the whole file).
    pub line: u32,
    /// The matching line, shortened.
    pub excerpt: String,
    /// Why it matters.
    pub reason: String,
}

impl serde::Serialize for Level {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Level::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown level {name:?}")))
    }
}

/// What the assessment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The skill's level.
    pub level: Level,
    /// Every signal, in file and rule order.
    pub signals: Vec<Signal>,
}

/// The compiled rules.
#[derive(Debug)]
pub struct Assessor {
    any: RegexSet,
    each: Vec<Regex>,
}

impl Assessor {
    /// Compiles the rule table.
    pub fn new() -> Result<Self, regex::Error> {
        let patterns: Vec<String> = TEXT_RULES.iter().map(|r| r.compiled_pattern()).collect();
        Ok(Self {
            any: RegexSet::new(&patterns)?,
            each: patterns
                .iter()
                .map(|p| Regex::new(p))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Assesses `tree` with its parsed `frontmatter`.
    #[must_use]
    pub fn assess(&self, tree: &SkillTree, frontmatter: &Frontmatter) -> Assessment {
        let mut signals = declared(frontmatter, tree.file("SKILL.md"));
        for file in tree.files() {
            self.scan_file(file, &mut signals);
        }
        let mut level = signals.iter().map(|s| s.level).max().unwrap_or(Level::Low);
        let mut high: Vec<&Signal> = Vec::new();
        for signal in signals.iter().filter(|s| s.level == Level::High) {
            if !high.iter().any(|seen| seen.rule == signal.rule) {
                high.push(signal);
            }
        }
        if let [first, second, ..] = high.as_slice() {
            let combined = Signal {
                rule: "combined".to_owned(),
                level: Level::Critical,
                file: first.file.clone(),
                line: first.line,
                excerpt: first.excerpt.clone(),
                reason: format!(
                    "high-risk signals of different kinds together ({}, {})",
                    first.rule, second.rule
                ),
            };
            signals.push(combined);
            level = Level::Critical;
        }
        // The level came from every signal; what is kept favours the worst.
        if signals.len() > MAX_SIGNALS {
            let mut order: Vec<usize> = (0..signals.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(signals[i].level));
            let mut keep = vec![false; signals.len()];
            for &i in order.iter().take(MAX_SIGNALS) {
                keep[i] = true;
            }
            let mut index = 0;
            signals.retain(|_| {
                index += 1;
                keep[index - 1]
            });
        }
        Assessment { level, signals }
    }

    fn scan_file(&self, file: &SkillFile, signals: &mut Vec<Signal>) {
        let bytes = file.contents.as_slice();
        let whole = |rule: (&str, Level, &str)| Signal {
            rule: rule.0.to_owned(),
            level: rule.1,
            file: file.path.clone(),
            line: 0,
            excerpt: String::new(),
            reason: rule.2.to_owned(),
        };
        if is_program(bytes) {
            signals.push(whole(file_rules::BINARY));
        } else if is_script(file) {
            signals.push(whole(file_rules::SCRIPT));
        } else if std::str::from_utf8(bytes).is_err() {
            signals.push(whole(file_rules::UNSCANNED));
        }
        for index in self.any.matches(bytes).iter() {
            let (Some(rule), Some(regex)) = (TEXT_RULES.get(index), self.each.get(index)) else {
                continue;
            };
            let mut line = 1u32;
            let mut counted = 0usize;
            for found in regex.find_iter(bytes).take(MAX_PER_RULE_AND_FILE) {
                line += count_newlines(&bytes[counted..found.start()]);
                counted = found.start();
                signals.push(Signal {
                    rule: rule.id.to_owned(),
                    level: rule.level,
                    file: file.path.clone(),
                    line,
                    excerpt: excerpt(bytes, found.start(), found.end()),
                    reason: rule.reason.to_owned(),
                });
            }
        }
    }
}

fn count_newlines(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.iter().filter(|b| **b == b'\n').count()).unwrap_or(u32::MAX)
}

/// The line around `start..end`, shortened to [`MAX_EXCERPT_CHARS`].
fn excerpt(bytes: &[u8], start: usize, end: usize) -> String {
    let line_start = bytes[..start]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let line_end = bytes[end..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |i| end + i);
    let from = line_start.max(start.saturating_sub(60));
    let text = String::from_utf8_lossy(&bytes[from..line_end]);
    let clean: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { '�' } else { c })
        .collect();
    mask_tokens(&clean)
        .chars()
        .take(MAX_EXCERPT_CHARS)
        .collect()
}

/// `text` with every run of 24 or more token characters (keys, tokens,
/// encoded blobs) cut to its first 4 and its length: excerpts are shown to
/// every signed-in user and must not hand out a credential a skill carries.
fn mask_tokens(text: &str) -> String {
    let token = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-');
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 24 {
            out.extend(run.chars().take(4));
            out.push_str(&format!("…({} chars)", run.chars().count()));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if token(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn is_program(bytes: &[u8]) -> bool {
    const MAGICS: &[&[u8]] = &[
        b"\x7fELF",
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
        b"\xce\xfa\xed\xfe",
        b"\xcf\xfa\xed\xfe",
        b"\xca\xfe\xba\xbe",
    ];
    MAGICS.iter().any(|magic| bytes.starts_with(magic))
        || (bytes.starts_with(b"MZ") && bytes.len() > 0x40)
}

fn is_script(file: &SkillFile) -> bool {
    const EXTENSIONS: &[&str] = &[
        "sh", "bash", "zsh", "fish", "py", "js", "mjs", "cjs", "ts", "rb", "pl", "php", "ps1",
        "bat", "cmd", "lua",
    ];
    let extension = file
        .path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    file.executable
        || file.contents.starts_with(b"#!")
        || extension.is_some_and(|ext| EXTENSIONS.contains(&ext.as_str()))
}

/// Signals of what the frontmatter declares, placed on the line of
/// SKILL.md that names it (or line 1).
fn declared(frontmatter: &Frontmatter, skill_md: Option<&SkillFile>) -> Vec<Signal> {
    let text = skill_md
        .map(|f| String::from_utf8_lossy(&f.contents).into_owned())
        .unwrap_or_default();
    let line_of = |needle: &str| -> (u32, String) {
        text.lines()
            .take(frontmatter.end_line)
            .enumerate()
            .find(|(_, line)| line.contains(needle))
            .map_or((1, String::new()), |(i, line)| {
                let clean: String = line.trim().chars().filter(|c| !c.is_control()).collect();
                let shown = mask_tokens(&clean)
                    .chars()
                    .take(MAX_EXCERPT_CHARS)
                    .collect();
                (u32::try_from(i + 1).unwrap_or(u32::MAX), shown)
            })
    };
    let mut signals = Vec::new();
    let mut push = |rule: (&str, Level, &str), subject: &str, detail: String| {
        let (line, excerpt) = line_of(subject);
        signals.push(Signal {
            rule: rule.0.to_owned(),
            level: rule.1,
            file: "SKILL.md".to_owned(),
            line,
            excerpt,
            reason: format!("{}: {}", rule.2, mask_tokens(&detail)),
        });
    };
    if !frontmatter.bins.is_empty() {
        push(declared_rules::BINS, "bins", frontmatter.bins.join(", "));
    }
    let (secret, plain): (Vec<&String>, Vec<&String>) =
        frontmatter.env.iter().partition(|name| secret_like(name));
    for name in secret {
        push(declared_rules::SECRET_ENV, name, name.clone());
    }
    if !plain.is_empty() {
        let names: Vec<&str> = plain.iter().map(|s| s.as_str()).collect();
        push(declared_rules::ENV, names[0], names.join(", "));
    }
    if !frontmatter.config.is_empty() {
        push(
            declared_rules::CONFIG,
            "config",
            frontmatter.config.join(", "),
        );
    }
    if frontmatter.always {
        push(declared_rules::ALWAYS, "always", "always: true".to_owned());
    }
    for spec in &frontmatter.install {
        let rule = if PACKAGE_KINDS.contains(&spec.kind.as_str()) {
            declared_rules::PACKAGE
        } else {
            declared_rules::DOWNLOAD
        };
        push(rule, "install", format!("{} {}", spec.kind, spec.target));
    }
    signals
}

#[cfg(test)]
#[path = "assess_tests.rs"]
mod tests;
