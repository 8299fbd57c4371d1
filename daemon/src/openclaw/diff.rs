//! What changed between two config texts, line by line: a unified diff for
//! people and a count of lines for the version list.
//!
//! Invariant: the diff is computed under a time bound (a worst case falls
//! back to a coarser but correct diff) and its text is cut at
//! [`MAX_DIFF_BYTES`] with a line saying so; callers pass texts already
//! redacted when the reader may not see secrets — this module never sees
//! who reads.

use std::time::Duration;

use similar::{ChangeTag, TextDiff};

/// The longest unified diff returned.
pub const MAX_DIFF_BYTES: usize = 256 * 1024;
/// Lines of context around each change.
const CONTEXT_LINES: usize = 3;
/// How long one diff may search for the smallest edit.
const DIFF_TIME_BOUND: Duration = Duration::from_millis(500);

/// Lines added and removed from one text to another.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    /// Lines only in the new text.
    pub added: u32,
    /// Lines only in the old text.
    pub removed: u32,
}

fn line_diff<'a>(old: &'a str, new: &'a str) -> TextDiff<'a, 'a, str> {
    TextDiff::configure()
        .timeout(DIFF_TIME_BOUND)
        .diff_lines(old, new)
}

/// The unified diff from `old` (labelled `old_label`) to `new`.
#[must_use]
pub fn unified(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    let diff = line_diff(old, new);
    let mut text = diff
        .unified_diff()
        .context_radius(CONTEXT_LINES)
        .header(old_label, new_label)
        .to_string();
    if text.len() > MAX_DIFF_BYTES {
        let mut cut = MAX_DIFF_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!(
            "\n… diff cut at {MAX_DIFF_BYTES} bytes; compare the full versions\n"
        ));
    }
    text
}

/// How many lines were added and removed from `old` to `new`.
#[must_use]
pub fn line_counts(old: &str, new: &str) -> LineCounts {
    let mut counts = LineCounts::default();
    for change in line_diff(old, new).iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => counts.added = counts.added.saturating_add(1),
            ChangeTag::Delete => counts.removed = counts.removed.saturating_add(1),
            ChangeTag::Equal => {}
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_shown_with_context_and_counted() {
        let old = "{\n  // the gateway\n  gateway: {\n    bind: \"loopback\",\n  },\n}\n";
        let new = "{\n  // the gateway\n  gateway: {\n    bind: \"lan\",\n    port: 1,\n  },\n}\n";
        let text = unified(old, new, "version 1", "version 2");
        assert!(
            text.starts_with("--- version 1\n+++ version 2\n@@"),
            "{text}"
        );
        assert!(text.contains("-    bind: \"loopback\",\n"), "{text}");
        assert!(
            text.contains("+    bind: \"lan\",\n+    port: 1,\n"),
            "{text}"
        );
        assert!(text.contains("   // the gateway\n"), "{text}");
        assert_eq!(
            line_counts(old, new),
            LineCounts {
                added: 2,
                removed: 1
            }
        );
        assert_eq!(unified(old, old, "a", "b"), "");
    }

    #[test]
    fn a_huge_diff_is_cut_with_a_note() {
        let old: String = (0..40_000).map(|i| format!("a{i}\n")).collect();
        let new: String = (0..40_000).map(|i| format!("b{i}\n")).collect();
        let text = unified(&old, &new, "a", "b");
        assert!(text.len() <= MAX_DIFF_BYTES + 100);
        assert!(text.ends_with("compare the full versions\n"));
    }
}
