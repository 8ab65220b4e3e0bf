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
