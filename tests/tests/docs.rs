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
