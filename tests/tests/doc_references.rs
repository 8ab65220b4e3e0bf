//! The docs point at code: "`jwt::tests::forgeries_are_refused`",
//! "`faults.rs::a_slow_secrets_manager_logs_nobody_out_in_jwt_mode`",
//! "`edge::routes::Route`". A reference that no longer leads anywhere (a
//! renamed test, a moved module) misleads the reader who follows it, so every
//! one must resolve: a module path to a file of that module declaring the
//! items named, a file name to a file declaring the function named.

use std::path::{Path, PathBuf};

use wxauth_tests::template::repo_root;

/// Where our Rust modules live.
const SOURCE_TREES: [&str; 6] = [
    "shared/src",
    "tests/src",
    "infra/admin/src",
    "infra/local-server/src",
    "infra/wechat-sim/src",
    "examples",
];

/// Other people's crates the docs may name; not ours to resolve.
const EXTERNAL_CRATES: [&str; 4] = ["aws_lc_rs", "std", "tokio", "lambda_http"];

/// Skipped when walking the repository: build output, installed tools.
const NOT_OURS: [&str; 5] = ["target", ".tools", "node_modules", ".git", ".venv"];

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !NOT_OURS.contains(&name.as_str()) {
                rust_files(&path, into);
            }
        } else if name.ends_with(".rs") {
            into.push(path);
        }
    }
}

/// A source file and the module path it holds, e.g. `shared/src/domain/jwt/mod.rs`
/// holds `domain::jwt`.
struct Module {
    segments: Vec<String>,
    text: String,
}

fn modules(root: &Path) -> Vec<Module> {
    let mut out = Vec::new();
    for tree in SOURCE_TREES {
        let mut files = Vec::new();
        rust_files(&root.join(tree), &mut files);
        for path in files {
            let relative = path.strip_prefix(root.join(tree)).unwrap();
            let mut segments: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| s != "src")
                .collect();
            if matches!(
                segments.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                segments.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            out.push(Module { segments, text });
        }
    }
    out
}

/// Whether `text` declares an item called `name` (a trailing `…` in the doc
/// abbreviates the name: any item starting so will do).
fn declares(text: &str, name: &str) -> bool {
    let (stem, prefix) = match name.strip_suffix('…') {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    [
        "fn ", "struct ", "enum ", "trait ", "mod ", "const ", "type ", "static ",
    ]
    .iter()
    .any(|keyword| {
        let needle = format!("{keyword}{stem}");
        text.match_indices(&needle).any(|(at, _)| {
            let after = text[at + needle.len()..].chars().next();
            prefix || !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    }) || (!prefix && variant_of_enum(text, stem))
}

/// An enum variant or an associated item: `Route` in `edge::routes::Route`
/// is an enum, but `Route::Login` would name a variant, written `Login,`
/// or `Login(`/`Login {` inside it.
fn variant_of_enum(text: &str, name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && [",", "(", " {", " ="]
            .iter()
            .any(|end| text.contains(&format!("    {name}{end}")))
}

/// Resolves `a::b::c`: the longest leading part that is a module's path (or
/// its tail: docs leave out the crate and the layer), then the rest declared
/// in that file, one nested item after another.
fn resolves(modules: &[Module], reference: &str) -> bool {
    let segments: Vec<&str> = reference.split("::").collect();
    (1..=segments.len()).rev().any(|split| {
        let (module, items) = segments.split_at(split);
        if module.last().is_some_and(|s| s.ends_with('…')) {
            return false;
        }
        modules
            .iter()
            .filter(|m| m.segments.len() >= module.len())
            .filter(|m| {
                m.segments[m.segments.len() - module.len()..]
                    .iter()
                    .zip(module)
                    .all(|(a, b)| a == b)
            })
            .any(|m| items.iter().all(|item| declares(&m.text, item)))
    })
}

/// Resolves `faults.rs::name` or `faults.rs`: a file so named (the tests'
/// files first), declaring `name` if one is given.
fn resolves_file(root: &Path, all: &[PathBuf], reference: &str) -> bool {
    let (file, item) = match reference.split_once("::") {
        Some((file, item)) => (file, Some(item)),
        None => (reference, None),
    };
    all.iter()
        .filter(|p| p.file_name().is_some_and(|n| n == file))
        .any(|p| match item {
            None => true,
            Some(item) => {
                let text = std::fs::read_to_string(root.join(p)).unwrap();
                item.split("::").all(|part| declares(&text, part))
            }
        })
}

/// Every backquoted `path::to::item` or `file.rs[::item]` in the README and docs/.
fn references(root: &Path) -> Vec<(String, String)> {
    let mut docs = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "md") {
            docs.push(entry.path());
        }
    }
    let mut out = Vec::new();
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.file_name().unwrap().to_string_lossy().into_owned();
        for (n, quoted) in text.split('`').enumerate() {
            let is_path =
                quoted.contains("::") || quoted.ends_with(".rs") || quoted.contains(".rs::");
            let plain = quoted
                .chars()
                .all(|c| c.is_alphanumeric() || "_:.…".contains(c));
            if n % 2 == 1 && is_path && plain && !quoted.starts_with("crate::") {
                out.push((name.clone(), quoted.to_owned()));
            }
        }
    }
    out
}

#[test]
fn every_code_reference_in_the_docs_leads_somewhere() {
    let root = repo_root();
    let modules = modules(&root);
    let mut all_files = Vec::new();
    rust_files(&root, &mut all_files);
    let found = references(&root);
    assert!(found.len() > 50, "the docs name code: {}", found.len());
    let broken: Vec<String> = found
        .into_iter()
        .filter(|(_, reference)| {
            let first = reference.split("::").next().unwrap();
            if EXTERNAL_CRATES.contains(&first) {
                return false;
            }
            // `…::name` continues the reference before it: some file declares it.
            let resolved = if first == "…" {
                let item = reference.trim_start_matches("…::");
                all_files
                    .iter()
                    .any(|p| std::fs::read_to_string(p).is_ok_and(|text| declares(&text, item)))
            } else if first.ends_with(".rs") {
                resolves_file(&root, &all_files, reference)
            } else {
                resolves(&modules, reference)
            };
            !resolved
        })
        .map(|(doc, reference)| format!("{doc}: `{reference}`"))
        .collect();
    assert!(broken.is_empty(), "leads nowhere:\n{}", broken.join("\n"));
}

/// The resolver itself: a real reference resolves, a stale one does not.
#[test]
fn the_resolver_tells_a_live_reference_from_a_stale_one() {
    let root = repo_root();
    let modules = modules(&root);
    let mut all_files = Vec::new();
    rust_files(&root, &mut all_files);
    assert!(resolves(&modules, "edge::routes::Route"));
    assert!(resolves(&modules, "wechat::retry::OneTimeCode"));
    assert!(resolves(
        &modules,
        "retry::tests::a_refusal_after_a_dropped…"
    ));
    assert!(!resolves(&modules, "api::Route"));
    assert!(!resolves(&modules, "retry::tests::no_such_test"));
    assert!(!resolves(&modules, "retry::OneTimeCod"));
    assert!(resolves_file(
        &root,
        &all_files,
        "docs.rs::every_shown_command_is_run_by_a_test"
    ));
    assert!(!resolves_file(&root, &all_files, "docs.rs::no_such_test"));
    assert!(!resolves_file(&root, &all_files, "no_such_file.rs"));
}
