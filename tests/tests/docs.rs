//! The repository explains its own API: every route, error code and
//! configuration variable the code knows is in docs/api.md, and every route
//! and error code is in docs/openapi.yaml. A new one that is not documented
//! fails here.

use wxauth::edge::error::ApiError;
use wxauth::edge::routes::Route;
use wxauth_tests::template::repo_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The code's own source without its unit tests (they name variables that
/// are not configuration, such as fixtures).
fn source_without_tests(path: &str) -> String {
    let text = read(path);
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Every environment variable the functions and the local server read: the
/// upper-case string literals of the configuration and start-up code.
fn variables() -> Vec<String> {
    let mut names: Vec<String> = [
        "shared/src/runtime/config/mod.rs",
        "shared/src/runtime/config/functions.rs",
        "shared/src/runtime/config/apps.rs",
        "shared/src/runtime/startup.rs",
    ]
    .iter()
    .flat_map(|path| {
        let text = source_without_tests(path);
        text.split('"')
            .skip(1)
            .step_by(2)
            .filter(|literal| {
                literal.len() >= 3
                    && literal.starts_with(|c: char| c.is_ascii_uppercase())
                    && literal
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .map(str::to_owned)
            .collect::<Vec<_>>()
    })
    .collect();
    // The one variable read outside those files: trusted roots.
    names.push(wxauth::runtime::tls::CA_BUNDLE_VARIABLE.to_owned());
    names.sort();
    names.dedup();
    names
}

#[test]
fn docs_api_md_names_every_route_error_and_variable() {
    let doc = read("docs/api.md");
    let mut missing = Vec::new();
    for route in Route::ALL {
        for method in route.methods().split(", ") {
            let entry = format!("`{method} {}`", route.path());
            if !doc.contains(&entry) {
                missing.push(entry);
            }
        }
    }
    for error in ApiError::every_kind() {
        let entry = format!("| {} | `{}` |", error.status(), error.code());
        if !doc.contains(&entry) {
            missing.push(entry);
        }
    }
    let variables = variables();
    assert!(
        variables.len() >= 20 && variables.iter().any(|v| v == "SESSION_TABLE"),
        "the scan found too few variables: {variables:?}"
    );
    for variable in variables {
        let entry = format!("`{variable}`");
        if !doc.contains(&entry) {
            missing.push(entry);
        }
    }
    assert!(missing.is_empty(), "docs/api.md lacks {missing:?}");
}

#[test]
fn docs_openapi_yaml_names_every_route_method_and_error_code() {
    let spec = read("docs/openapi.yaml");
    let mut missing = Vec::new();
    for route in Route::ALL {
        // `  /path:` then its operations, up to the next path.
        let header = format!("\n  {}:\n", route.path());
        let Some(start) = spec.find(&header) else {
            missing.push(route.path().to_owned());
            continue;
        };
        let rest = &spec[start + header.len()..];
        let end = rest.find("\n  /").unwrap_or(rest.len());
        let operations = format!("\n{}", &rest[..end]);
        for method in route.methods().split(", ") {
            if !operations.contains(&format!("\n    {}:", method.to_ascii_lowercase())) {
                missing.push(format!("{method} {}", route.path()));
            }
        }
    }
    for error in ApiError::every_kind() {
        if !spec.contains(&format!("- {}\n", error.code())) {
            missing.push(error.code().to_owned());
        }
    }
    assert!(missing.is_empty(), "docs/openapi.yaml lacks {missing:?}");
}

/// Every command a page shows is run by a test. A shell block is either a
/// walkthrough (`<!-- walkthrough -->`: infra/local-smoke.sh runs its page's
/// blocks against the local server, every answer compared), or names what
/// runs it (`<!-- run by: path -->`), and that file names the page back, so
/// that neither side can change alone. Commands that only an AWS account can
/// run (a deploy) are described in prose, not shown as blocks.
#[test]
fn every_shown_command_is_run_by_a_test() {
    let mut pages = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(repo_root().join("docs"))
        .expect("docs/")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    pages.extend(docs);
    let smoke = read("infra/local-smoke.sh");
    let mut problems = Vec::new();
    let mut blocks = 0;
    for page in &pages {
        let text = read(page);
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() != "```sh" {
                continue;
            }
            blocks += 1;
            let marker = i
                .checked_sub(1)
                .map(|j| lines[j].trim())
                .unwrap_or_default();
            if marker.starts_with("<!-- walkthrough") {
                if !smoke.contains(&format!("infra/docs-walkthrough.py {page}")) {
                    problems.push(format!(
                        "{page}:{}: infra/local-smoke.sh does not walk it",
                        i + 1
                    ));
                }
                continue;
            }
            let Some(runner) = marker
                .strip_prefix("<!-- run by: ")
                .and_then(|rest| rest.strip_suffix(" -->"))
            else {
                problems.push(format!(
                    "{page}:{}: a shell block no test is named for",
                    i + 1
                ));
                continue;
            };
            match std::fs::read_to_string(repo_root().join(runner)) {
                Ok(file)
                    if file.contains(page.as_str())
                        || (page == "README.md" && file.contains("README")) => {}
                Ok(_) => problems.push(format!("{page}:{}: {runner} does not name {page}", i + 1)),
                Err(_) => problems.push(format!("{page}:{}: {runner} does not exist", i + 1)),
            }
        }
    }
    assert!(blocks >= 6, "found {blocks} shell blocks");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
