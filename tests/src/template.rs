//! What `template.yaml` deploys, read the way `sam build` reads it: each
//! function's logical id and the cargo binary its `rust-cargolambda` build makes.

use std::path::PathBuf;

/// The repository root (the tests crate lives one folder below it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate has a parent folder")
        .to_path_buf()
}

/// A function of the template: `LoginFunction` built from binary `login`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFunction {
    pub logical_id: String,
    pub binary: String,
}

/// Every `AWS::Serverless::Function` with `BuildMethod: rust-cargolambda`, in
/// template order. A line scan, not a YAML parser: CloudFormation's short-form
/// tags (`!Ref`, `!If`) are not plain YAML, and the layout here is fixed by
/// cfn-lint and the policy tests.
pub fn functions() -> Vec<TemplateFunction> {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    let mut found = Vec::new();
    let mut resource: Option<String> = None;
    let mut in_resources = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_resources = line.trim_end() == "Resources:";
            continue;
        }
        if !in_resources {
            continue;
        }
        // A resource: exactly two spaces of indentation, `Name:`.
        if let Some(name) = line.strip_prefix("  ")
            && !name.starts_with(' ')
            && let Some(name) = name.trim_end().strip_suffix(':')
        {
            resource = Some(name.to_owned());
            continue;
        }
        if let Some(binary) = line.trim().strip_prefix("Binary: ")
            && let Some(logical_id) = &resource
        {
            found.push(TemplateFunction {
                logical_id: logical_id.clone(),
                binary: binary.trim().to_owned(),
            });
        }
    }
    found
}

/// The text of one resource of `template.yaml`: its line and every line
/// indented below it.
pub fn resource_text(logical_id: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    let header = format!("  {logical_id}:");
    let mut lines = text.lines().skip_while(|line| line.trim_end() != header);
    let mut block = String::new();
    if let Some(first) = lines.next() {
        block.push_str(first);
        block.push('\n');
    }
    for line in lines {
        let resource_start =
            line.starts_with("  ") && !line.starts_with("   ") && !line.trim().is_empty();
        if resource_start || (!line.starts_with(' ') && !line.is_empty()) {
            break;
        }
        block.push_str(line);
        block.push('\n');
    }
    block
}

/// The statements of a function's inline policy, each as its lines' text.
pub fn statements(logical_id: &str) -> Vec<String> {
    let resource = resource_text(logical_id);
    let mut statements: Vec<String> = Vec::new();
    for line in resource.lines() {
        if line.trim_start().starts_with("- Effect:") {
            statements.push(String::new());
        }
        if let Some(current) = statements.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    statements
}

/// The quoted list items (`- "account#*"`) and the inline `[a, b]` lists
/// of the statement of `logical_id` that grants `action` with a condition
/// naming `key`: what the condition allows or excludes.
pub fn condition_values(logical_id: &str, action: &str, key: &str) -> Vec<String> {
    let statement = statements(logical_id)
        .into_iter()
        .find(|s| s.contains(action) && s.contains(key))
        .unwrap_or_else(|| panic!("{logical_id}: no {action} statement conditioned on {key}"));
    let mut values = Vec::new();
    let mut in_key = false;
    for line in statement.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix(&format!("{key}:")) {
            in_key = true;
            if let Some(list) = rest
                .trim()
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
            {
                values.extend(
                    list.split(',')
                        .map(|v| v.trim().trim_matches('"').to_owned()),
                );
                in_key = false;
            }
            continue;
        }
        match trimmed.strip_prefix("- ") {
            Some(item) if in_key => values.push(item.trim_matches('"').to_owned()),
            _ => in_key = false,
        }
    }
    values
}

/// IAM's `StringLike`: `*` any run of characters, `?` any one.
pub fn iam_like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    go(&p, &t)
}
