//! The operator tool, `wxauth-admin`, run as the operator runs it: a process
//! with the stack's tables and apps in its environment.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::world::World;

/// `wxauth-admin args`, on `world`'s tables, knowing its apps: (exit code,
/// stdout as JSON or `Null`, stderr).
pub fn admin(world: &World, args: &[&str]) -> (i32, Value, String) {
    let (name, apps) = world.apps_variable();
    admin_with(
        world,
        args,
        &[("LOGIN_LOG_TABLE", &world.log_table), (name, &apps)],
    )
}

/// `wxauth-admin` with `extra` variables besides the session table's and
/// AWS's (the log table and the apps among them, or not).
pub fn admin_with(world: &World, args: &[&str], extra: &[(&str, &str)]) -> (i32, Value, String) {
    // WXAUTH_ADMIN_BIN (infra/test.sh builds it), else beside this test's
    // deps folder: target/<profile>/deps/<this test> → target/<profile>/wxauth-admin.
    let bin: PathBuf = std::env::var_os("WXAUTH_ADMIN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("test binary");
            exe.parent()
                .and_then(|deps| deps.parent())
                .expect("target dir")
                .join("wxauth-admin")
        });
    assert!(
        bin.exists(),
        "{} missing: build it with cargo build -p wxauth-admin (infra/test.sh does)",
        bin.display()
    );
    let output = Command::new(bin)
        .args(args)
        .env_clear()
        .env("SESSION_TABLE", &world.table)
        .envs(extra.iter().copied())
        .env("AWS_ENDPOINT_URL_DYNAMODB", &world.standins.dynamodb)
        .env("AWS_REGION", crate::standins::REGION)
        .env("AWS_ACCESS_KEY_ID", "operator")
        .env("AWS_SECRET_ACCESS_KEY", "operator")
        .output()
        .expect("wxauth-admin runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), json, stderr)
}
