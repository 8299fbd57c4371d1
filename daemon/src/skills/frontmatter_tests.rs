use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/fixtures/skills/{name}/SKILL.md",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

#[test]
fn json5_metadata_on_one_line_and_as_a_yaml_mapping_are_both_read() {
    let brew = parse(&fixture("brew-install")).unwrap();
    assert_eq!(brew.name, "github");
    assert_eq!(brew.bins, ["gh"]);
    let kinds: Vec<&str> = brew.install.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(kinds, ["brew", "node"]);
    assert_eq!(brew.install[0].target, "gh");
    let notion = parse(&fixture("needs-api-key")).unwrap();
    assert_eq!(notion.env, ["NOTION_API_KEY"]);
    assert_eq!(notion.config, ["skills.notion.workspace"]);
    let weather = parse(&fixture("needs-binary")).unwrap();
    assert_eq!(weather.bins, ["curl"], "legacy clawdbot key");
    assert_eq!(weather.end_line, 6);
}

#[test]
fn a_json5_string_with_comments_and_trailing_commas_is_read() {
    let md = b"---\nname: x\ndescription: y\nmetadata: '{ openclaw: { always: true, requires: { env: [\"A_TOKEN\",], }, }, /* c */ }'\n---\n";
    let parsed = parse(md).unwrap();
    assert!(parsed.always);
    assert_eq!(parsed.env, ["A_TOKEN"]);
}

#[test]
fn invalid_aliased_deep_or_nameless_frontmatter_is_refused() {
    let invalid = parse(&fixture("invalid-yaml")).unwrap_err().to_string();
    assert!(invalid.contains("not valid YAML"), "{invalid}");
    let laughs = b"---\nname: x\ndescription: y\na: &a [1,1]\nb: [*a,*a]\n---\n";
    assert!(parse(laughs).unwrap_err().to_string().contains("aliases"));
    let deep = format!(
        "---\nname: x\ndescription: y\nm: {}{}\n---\n",
        "[".repeat(40),
        "]".repeat(40)
    );
    assert!(
        parse(deep.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("deeper")
    );
    let deep_json5 = format!(
        "---\nname: x\ndescription: y\nmetadata: '{}'\n---\n",
        "[".repeat(16000)
    );
    assert!(
        parse(deep_json5.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("deeper")
    );
    let second = b"---\nname: x\ndescription: y\n--- # x\na: &a [1,1]\nb: [*a,*a]\n---\n";
    assert!(parse(second).is_err());
    let compact = format!(
        "---\nname: x\ndescription: y\nm:\n{}1\n---\n",
        "- ".repeat(6000)
    );
    let compact_err = parse(compact.as_bytes()).unwrap_err().to_string();
    assert!(
        compact_err.contains("deeper") || compact_err.contains("closing"),
        "{compact_err}"
    );
    let commented = format!(
        "---\nname: x\ndescription: y\nmetadata: '// \"\n{}'\n---\n",
        "[".repeat(3000)
    );
    assert!(parse(commented.as_bytes()).is_err());
    let bad_name = b"---\nname: ../evil\ndescription: y\n---\n";
    assert!(parse(bad_name).unwrap_err().to_string().contains("`name`"));
    let no_desc = b"---\nname: ok\n---\n";
    assert!(
        parse(no_desc)
            .unwrap_err()
            .to_string()
            .contains("description")
    );
    assert!(
        parse(b"# no frontmatter\n")
            .unwrap_err()
            .to_string()
            .contains("`---`")
    );
    let unclosed = format!("---\nname: x\n{}", "a: b\n".repeat(5000));
    assert!(
        parse(unclosed.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("closing")
    );
}
