//! The arm64 artifacts `sam build` makes for AWS (`.aws-sam/build/<Function>/bootstrap`,
//! the template's `arm64` architecture): each is an aarch64 ELF within the size
//! budget, needs no glibc newer than `provided.al2023`'s, and runs. Under
//! qemu-user, behind the same Runtime API emulator and stand-ins as the x86_64
//! release binaries, the login flow of docs/local.md answers exactly as they do.
//!
//! `infra/test.sh` runs `sam build` first and installs qemu-user-static and the
//! aarch64 C library it loads the bootstraps with; see `artifacts()` for the
//! variables that point elsewhere.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use wxauth_tests::runtime::{LambdaFunction, bin_dir};
use wxauth_tests::stack::Stack;
use wxauth_tests::template::{TemplateFunction, functions, repo_root};
use wxauth_tests::world::{APPID, World, encrypt_for, phone_plaintext};

/// The stripped-binary budget docs/performance.md holds every function to.
const SIZE_BUDGET_BYTES: u64 = 8_000_000;
/// `provided.al2023` ships glibc 2.34: a bootstrap needing a newer symbol
/// version fails to start on Lambda with "version `GLIBC_2.xx' not found".
const AL2023_GLIBC_MINOR: u32 = 34;
/// ELF `e_machine` for AArch64.
const EM_AARCH64: u16 = 0xB7;

/// `WXAUTH_SAM_BUILD_DIR` (default `.aws-sam/build`), the qemu-user program
/// (`WXAUTH_QEMU`, default `qemu-aarch64-static`) and the aarch64 sysroot it
/// loads glibc from (`WXAUTH_QEMU_SYSROOT`, default Debian's
/// `libc6-arm64-cross`, `/usr/aarch64-linux-gnu`).
struct Arm64 {
    build_dir: PathBuf,
    qemu: String,
    sysroot: String,
}

fn artifacts() -> Arm64 {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    Arm64 {
        build_dir: var("WXAUTH_SAM_BUILD_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".aws-sam/build")),
        qemu: var("WXAUTH_QEMU").unwrap_or_else(|| "qemu-aarch64-static".into()),
        sysroot: var("WXAUTH_QEMU_SYSROOT").unwrap_or_else(|| "/usr/aarch64-linux-gnu".into()),
    }
}

/// How one set of binaries is started: natively, or the arm64 ones under qemu.
enum Machine {
    X86_64,
    Arm64Emulated(Arm64),
}

impl Machine {
    async fn start(&self, function: &TemplateFunction, env: &[(&str, String)]) -> LambdaFunction {
        match self {
            Machine::X86_64 => LambdaFunction::start(&function.binary, env).await,
            Machine::Arm64Emulated(arm64) => {
                let bootstrap = arm64.bootstrap(function);
                let bootstrap = bootstrap.to_str().expect("UTF-8 path");
                LambdaFunction::start_command(
                    &function.binary,
                    arm64.qemu.as_ref(),
                    &["-L", &arm64.sysroot, bootstrap],
                    env,
                )
                .await
            }
        }
    }
}

impl Arm64 {
    fn bootstrap(&self, function: &TemplateFunction) -> PathBuf {
        self.build_dir.join(&function.logical_id).join("bootstrap")
    }
}

fn function(binary: &str) -> TemplateFunction {
    functions()
        .into_iter()
        .find(|f| f.binary == binary)
        .unwrap_or_else(|| panic!("template.yaml builds no binary {binary}"))
}

/// The ELF header fields that decide where a binary can run.
fn elf_machine(bytes: &[u8]) -> Result<u16, String> {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF".into());
    }
    Ok(u16::from_le_bytes([bytes[18], bytes[19]]))
}

/// The newest `GLIBC_2.N` symbol version the binary asks the loader for (the
/// version names sit in its dynamic string table).
fn newest_glibc_minor(bytes: &[u8]) -> Option<u32> {
    let needle = b"GLIBC_2.";
    bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .filter_map(|(at, _)| {
            let digits: Vec<u8> = bytes[at + needle.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect();
            std::str::from_utf8(&digits).ok()?.parse().ok()
        })
        .max()
}

#[test]
fn sam_build_made_an_aarch64_bootstrap_for_every_function_within_budget() {
    let arm64 = artifacts();
    let template = functions();
    assert_eq!(template.len(), 5, "the template's functions: {template:?}");
    let mut built: Vec<String> = std::fs::read_dir(&arm64.build_dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `sam build` first (infra/test.sh does)",
                arm64.build_dir.display()
            )
        })
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    built.sort();
    let mut expected: Vec<String> = template.iter().map(|f| f.logical_id.clone()).collect();
    expected.sort();
    assert_eq!(built, expected, "one artifact folder per template function");

    for function in &template {
        let folder = arm64.build_dir.join(&function.logical_id);
        // The zip Lambda gets is the folder: `bootstrap` at its root, nothing else needed.
        let bootstrap = arm64.bootstrap(function);
        let bytes =
            std::fs::read(&bootstrap).unwrap_or_else(|e| panic!("{}: {e}", bootstrap.display()));
        assert_eq!(
            elf_machine(&bytes),
            Ok(EM_AARCH64),
            "{} must be an aarch64 ELF (the template promises arm64)",
            bootstrap.display()
        );
        let size = bytes.len() as u64;
        assert!(
            size <= SIZE_BUDGET_BYTES,
            "{}: {size} bytes, over the {SIZE_BUDGET_BYTES}-byte budget",
            bootstrap.display()
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&bootstrap)
            .expect("metadata")
            .permissions()
            .mode();
        assert!(
            mode & 0o111 != 0,
            "{} is not executable",
            bootstrap.display()
        );
        let glibc = newest_glibc_minor(&bytes)
            .unwrap_or_else(|| panic!("{}: links no glibc?", bootstrap.display()));
        assert!(
            glibc <= AL2023_GLIBC_MINOR,
            "{} needs GLIBC_2.{glibc}; provided.al2023 has 2.{AL2023_GLIBC_MINOR}",
            bootstrap.display()
        );
        let extra: Vec<String> = std::fs::read_dir(&folder)
            .expect("artifact folder")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "bootstrap")
            .collect();
        assert!(
            extra.is_empty(),
            "{}: unexpected {extra:?}",
            folder.display()
        );
    }
}

#[test]
fn the_elf_checks_tell_architectures_and_glibc_versions_apart() {
    // The checks above must be able to fail: this machine's own x86_64 binaries
    // are refused by the architecture check.
    let x86 = std::fs::read(bin_dir().join("check-session")).expect("release check-session");
    assert_eq!(elf_machine(&x86), Ok(0x3E), "EM_X86_64");
    assert_ne!(elf_machine(&x86), Ok(EM_AARCH64));
    assert!(elf_machine(b"#!/bin/sh\necho bootstrap\n").is_err());
    assert_eq!(
        newest_glibc_minor(b"\0GLIBC_2.17\0GLIBC_2.34\0GLIBC_2.4\0"),
        Some(34)
    );
    assert_eq!(newest_glibc_minor(b"\0GLIBC_2.39\0"), Some(39));
}

/// One step of the flow: status and what the client reads of the answer, with
/// per-run values (tokens, ids, times) replaced by their shape.
fn summary(status: u16, body: &Value, openid: &str) -> Value {
    json!({"status": status, "body": shape(body, openid)})
}

fn shape(value: &Value, openid: &str) -> Value {
    let Value::Object(fields) = value else {
        return value.clone();
    };
    // GET /session counts its expiresIn down: two runs may straddle a second.
    let counting_down = fields.contains_key("valid");
    let mut out = serde_json::Map::new();
    for (key, value) in fields {
        let seen = match (key.as_str(), value) {
            ("expiresIn", Value::Number(_)) if counting_down => json!("<seconds left>"),
            (_, Value::String(s)) if s == openid => json!("<the openid>"),
            (
                "valid" | "error" | "purePhoneNumber" | "phoneNumber" | "countryCode" | "newUser"
                | "expiresIn" | "refreshExpiresIn" | "isAuthorized",
                _,
            ) => value.clone(),
            (_, Value::String(s)) => json!(format!("<string of {} chars>", s.len())),
            (_, Value::Number(_)) => json!("<number>"),
            (_, other) => shape(other, openid),
        };
        out.insert(key.clone(), seen);
    }
    Value::Object(out)
}

/// login → GET /session → POST /phone (by ciphertext, then by code) → the
/// authorizer → DELETE /session → refused; and each function's init time.
async fn readme_flow(
    world: &World,
    machine: &Machine,
    openid: &str,
) -> (Vec<Value>, Vec<(String, Duration)>) {
    let env = world.function_env();
    let mut stack = Stack {
        login: machine.start(&function("login"), &env).await,
        phone: machine.start(&function("decrypt-phone"), &env).await,
        check: machine.start(&function("check-session"), &env).await,
        authorizer: machine.start(&function("authorizer"), &env).await,
    };
    let mut rotation = machine.start(&function("rotate-signing-key"), &env).await;

    let mut steps = Vec::new();
    let (code, issued) = world.wechat.issue_code_for(openid, None);
    let (status, body) = stack.log_in_with_code(&code).await;
    assert_eq!(status, 200, "{body}\n{}", stack.login.logs.text());
    steps.push(summary(status, &body, openid));
    let token = body["token"].as_str().expect("token").to_owned();

    let (status, body) = stack.session(&token).await;
    steps.push(summary(status, &body, openid));

    let payload = encrypt_for(&issued, &phone_plaintext(APPID, "13800138000"));
    let (status, body) = stack.with_json("POST", "/phone", &token, &payload).await;
    steps.push(summary(status, &body, openid));
    let phone_code = world.wechat.issue_phone_code(openid, "13900139000");
    let (status, body) = stack
        .with_json("POST", "/phone", &token, &json!({"code": phone_code}))
        .await;
    steps.push(summary(status, &body, openid));

    // The authorizer answers API Gateway's simple response, not an HTTP one.
    let decision = stack.authorized(&token).await;
    steps.push(summary(200, &decision, openid));

    let (status, body) = stack.with_token("DELETE", "/session", &token).await;
    steps.push(summary(status, &body, openid));
    let (status, body) = stack.session(&token).await;
    steps.push(summary(status, &body, openid));

    let mut inits = Vec::new();
    for (name, function) in [
        ("login", &mut stack.login),
        ("decrypt-phone", &mut stack.phone),
        ("check-session", &mut stack.check),
        ("authorizer", &mut stack.authorizer),
        ("rotate-signing-key", &mut rotation),
    ] {
        let init = function
            .init_duration(Duration::from_secs(60))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{name} never asked for an invocation:\n{}",
                    function.logs.text()
                )
            });
        assert!(
            function.is_running(),
            "{name} exited:\n{}",
            function.logs.text()
        );
        function.stop().await;
        inits.push((name.to_owned(), init));
    }
    (steps, inits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arm64_bootstraps_answer_the_readme_flow_as_the_x86_64_binaries_do() {
    let world = World::new().await;
    let (native, _) = readme_flow(&world, &Machine::X86_64, "oX8664000000000000000000001").await;
    let (emulated, inits) = readme_flow(
        &world,
        &Machine::Arm64Emulated(artifacts()),
        "oARM64000000000000000000001",
    )
    .await;
    // The flow is the one users depend on, not any answer at all.
    let statuses: Vec<u64> = native
        .iter()
        .map(|s| s["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 204, 401], "{native:#?}");
    assert_eq!(native[2]["body"]["purePhoneNumber"], "13800138000");
    assert_eq!(native[4]["body"]["isAuthorized"], true);
    assert_eq!(emulated, native);

    // A figure, not a gate: qemu translates every instruction, so this says
    // nothing about Graviton except that init completes.
    let report: String = inits
        .iter()
        .map(|(name, init)| format!("{name} {:.1} ms\n", init.as_secs_f64() * 1e3))
        .collect();
    let path = artifacts().build_dir.join("../qemu-init.txt");
    std::fs::write(&path, &report).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
