//! `CARGO_TARGET_DIR` (or a config's `build.target-dir`) is honoured: the
//! scripts and the test harness look for the binaries where cargo built them,
//! not in a hard-coded `./target`.

use std::process::Command;

use wxauth_tests::runtime::target_dir;
use wxauth_tests::template::repo_root;

/// What `infra/lib.sh`'s `cargo_target_dir` prints with `vars` set.
fn scripts_target_dir(vars: &[(&str, &str)]) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"root="$1"; source "$root/infra/lib.sh"; cargo_target_dir"#)
        .arg("bash")
        .arg(repo_root())
        .env_remove("CARGO_TARGET_DIR")
        .envs(vars.iter().copied())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_scripts_follow_cargo_target_dir() {
    let elsewhere = std::env::temp_dir().join("wxauth-elsewhere-target");
    let elsewhere = elsewhere.to_str().expect("UTF-8 path");
    assert_eq!(
        scripts_target_dir(&[("CARGO_TARGET_DIR", elsewhere)]),
        elsewhere
    );
    assert_eq!(
        scripts_target_dir(&[("CARGO_BUILD_TARGET_DIR", elsewhere)]),
        elsewhere
    );
}

#[test]
fn the_harness_finds_the_target_directory_it_was_built_in() {
    // The same directory cargo reports for this build, whatever put it there.
    let reported = scripts_target_dir(&[]);
    let from_env = std::env::var("CARGO_TARGET_DIR").ok();
    let expected = from_env.unwrap_or(reported);
    assert_eq!(
        target_dir().canonicalize().expect("target dir"),
        std::path::Path::new(&expected)
            .canonicalize()
            .expect("reported dir")
    );
}
