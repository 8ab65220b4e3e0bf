//! The shape of the code, kept: `shared/src` is a stack of layers, and an
//! import may only point down it (or stay in its layer); no two modules
//! import each other, at any depth; the DynamoDB adapter's operation files
//! import only the table's helpers and item shapes, never one another.
//!
//! A plain reading of the source: every `crate::…` path in the non-test part
//! of each file (use statements, brace groups expanded, and inline paths).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use wxauth_tests::template::repo_root;

/// The layers, lowest first: a module may import from its own rank or below.
const LAYERS: [(&str, u8); 8] = [
    ("domain", 0),
    ("runtime", 1),
    ("ports", 2),
    ("wechat", 3),
    ("services", 4),
    ("aws", 4),
    ("edge", 5),
    ("handlers", 6),
];

/// The DynamoDB adapter: files every operation may use, and the operations.
const TABLE_HELPERS: [&str; 5] = ["mod", "table", "items", "families", "identities"];

fn rank(top: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == top)
        .map(|(_, rank)| *rank)
}

/// A source file as a module path: `shared/src/aws/dynamodb/login.rs` →
/// `["aws", "dynamodb", "login"]` (`mod.rs` names its folder).
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root).expect("under shared/src");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts
}

/// The non-test code of a file: everything before its first `#[cfg(test)]`,
/// without comments (a doc comment may name any module).
fn without_tests(text: &str) -> String {
    let code = text.find("#[cfg(test)]").map_or(text, |at| &text[..at]);
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &str, body: &str, out: &mut Vec<String>) {
    let body = body.trim();
    if let Some(open) = body.find('{') {
        let head = body[..open].trim().trim_end_matches("::");
        let inner = &body[open + 1..body.rfind('}').unwrap_or(body.len())];
        let mut depth = 0;
        let mut start = 0;
        let joined = |p: &str, h: &str| match (p.is_empty(), h.is_empty()) {
            (true, _) => h.to_owned(),
            (_, true) => p.to_owned(),
            _ => format!("{p}::{h}"),
        };
        let prefix = joined(prefix, head);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&prefix, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&prefix, &inner[start..], out);
    } else if !body.is_empty() {
        let path = body.split(" as ").next().unwrap_or(body).trim();
        out.push(if prefix.is_empty() {
            path.to_owned()
        } else {
            format!("{prefix}::{path}")
        });
    }
}

/// Every `crate::` path a source text names, without `crate::`.
pub fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let is_use = rest[..at].trim_end().ends_with("use");
        let end = if is_use {
            after.find(';').unwrap_or(after.len())
        } else {
            after
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(after.len())
        };
        let mut expanded = Vec::new();
        expand("", &after[..end], &mut expanded);
        for path in expanded {
            let segments: Vec<String> = path
                .split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "self")
                .map(str::to_owned)
                .collect();
            if !segments.is_empty() {
                paths.push(segments);
            }
        }
        rest = &after[end..];
    }
    paths
}

/// The longest module prefix of `path` that is a source file.
fn resolve(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("shared/src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What is wrong with a set of files (module path → its source text).
pub fn violations(files: &BTreeMap<Vec<String>, String>) -> Vec<String> {
    let modules: BTreeSet<Vec<String>> = files.keys().cloned().collect();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, text) in files {
        let Some(top) = module.first() else {
            continue;
        };
        if module.last().is_some_and(|last| last == "tests") {
            continue;
        }
        let Some(own) = rank(top) else {
            problems.push(format!("{} is in no layer", module.join("::")));
            continue;
        };
        for path in crate_paths(&without_tests(text)) {
            let Some(target) = resolve(&path, &modules) else {
                continue;
            };
            let target_top = &target[0];
            match rank(target_top) {
                Some(theirs) if theirs > own => problems.push(format!(
                    "{} imports crate::{} from a layer above it ({top} {own} < {target_top} {theirs})",
                    module.join("::"),
                    path.join("::")
                )),
                Some(theirs) if theirs == own && target_top != top => problems.push(format!(
                    "{} imports crate::{}: {top} and {target_top} are siblings and must not import each other",
                    module.join("::"),
                    path.join("::")
                )),
                _ => {}
            }
            if module[..] != target[..] && !target.starts_with(module) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    // No circles, at any depth: a module reaching itself through imports.
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<Vec<String>> = edges[start].iter().cloned().collect();
        while let Some(next) = stack.pop() {
            if &next == start {
                problems.push(format!("{} is in an import circle", start.join("::")));
                break;
            }
            if seen.insert(next.clone()) {
                stack.extend(edges.get(&next).into_iter().flatten().cloned());
            }
        }
    }
    // The DynamoDB adapter's operations import the table's helpers only.
    for (module, targets) in &edges {
        let operation = module.len() == 3
            && module[0] == "aws"
            && module[1] == "dynamodb"
            && !TABLE_HELPERS.contains(&module[2].as_str());
        for target in targets {
            let other_operation = target.len() >= 3
                && target[0] == "aws"
                && target[1] == "dynamodb"
                && !TABLE_HELPERS.contains(&target[2].as_str());
            if operation && other_operation {
                problems.push(format!(
                    "{} imports {}: operation files share only the table's helpers",
                    module.join("::"),
                    target.join("::")
                ));
            }
        }
    }
    problems
}

fn shared_sources() -> BTreeMap<Vec<String>, String> {
    let root = repo_root().join("shared/src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files
        .into_iter()
        .filter(|file| !file.ends_with("lib.rs"))
        .map(|file| {
            let text = std::fs::read_to_string(&file).expect("source");
            (module_of(&root, &file), text)
        })
        .collect()
}

#[test]
fn imports_point_down_the_layers_and_never_in_a_circle() {
    let files = shared_sources();
    assert!(files.len() > 40, "found {} files", files.len());
    let problems = violations(&files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn lib_rs_declares_the_layers_and_nothing_else() {
    let lib = std::fs::read_to_string(repo_root().join("shared/src/lib.rs")).expect("lib.rs");
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            line.strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))
                .map(|name| name.trim_end_matches(';'))
        })
        .collect();
    let layers: BTreeSet<&str> = LAYERS.iter().map(|(name, _)| *name).collect();
    assert_eq!(declared, layers);
}

/// The checker itself: an upward import, two siblings, a circle and two
/// DynamoDB operations importing each other are each found; a clean tree is
/// not faulted.
#[test]
fn the_checker_finds_what_it_forbids() {
    let tree = |files: &[(&str, &str)]| -> BTreeMap<Vec<String>, String> {
        files
            .iter()
            .map(|(module, text)| {
                (
                    module.split("::").map(str::to_owned).collect(),
                    (*text).to_owned(),
                )
            })
            .collect()
    };
    let clean = tree(&[
        ("domain::token", "use std::fmt;"),
        (
            "ports::sessions",
            "use crate::domain::{token::SessionToken, session::{Session, Caller}};",
        ),
        ("domain::session", "use crate::domain::token::TokenKey;"),
        ("handlers::login", "fn f() { crate::ports::sessions::x(); }"),
    ]);
    assert_eq!(violations(&clean), Vec::<String>::new());
    let upward = tree(&[
        ("domain::token", "use crate::ports::sessions::SessionStore;"),
        ("ports::sessions", ""),
    ]);
    assert!(violations(&upward)[0].contains("from a layer above it"));
    let siblings = tree(&[
        ("aws::x", "use crate::services::y::Z;"),
        ("services::y", ""),
    ]);
    assert!(violations(&siblings)[0].contains("siblings"));
    let circle = tree(&[
        ("domain::a", "use crate::domain::b::B;"),
        (
            "domain::b",
            "pub struct B; fn f() { crate::domain::a::g(); }",
        ),
    ]);
    assert!(violations(&circle).iter().any(|p| p.contains("circle")));
    let operations = tree(&[
        (
            "aws::dynamodb::login",
            "use crate::aws::dynamodb::refresh::spend;",
        ),
        (
            "aws::dynamodb::refresh",
            "use crate::aws::dynamodb::table::s;",
        ),
        ("aws::dynamodb::table", ""),
    ]);
    assert!(
        violations(&operations)
            .iter()
            .any(|p| p.contains("operation files"))
    );
    // Test code may reach anywhere.
    let tests = tree(&[
        (
            "domain::token",
            "#[cfg(test)]\nuse crate::ports::memory::M;",
        ),
        ("ports::memory", ""),
    ]);
    assert_eq!(violations(&tests), Vec::<String>::new());
}
