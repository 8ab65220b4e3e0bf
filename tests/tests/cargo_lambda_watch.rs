//! `cargo lambda watch` as docs/deployment.md documents it: run in the repository root
//! with the configuration in an `--env-file`, serving each function at
//! `/lambda-url/<function>/...` (Function URL events, a 600000 ms "deadline").
//! It drives login → GET /session → POST /phone (by code) → DELETE /session
//! against DynamoDB Local, moto and the fake WeChat.
//!
//! `infra/test.sh` installs cargo-lambda (pip) and exports its path as
//! `WXAUTH_CARGO_LAMBDA`; without it this test fails rather than skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};
use wxauth_tests::world::World;

/// cargo lambda watch in its own process group, ended with the group: it runs
/// `cargo run` for each function, and those must not outlive the test.
struct Watch {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Watch {
    async fn start(env_file: &std::path::Path) -> Self {
        let cargo_lambda = std::env::var("WXAUTH_CARGO_LAMBDA")
            .expect("WXAUTH_CARGO_LAMBDA: the cargo-lambda binary (infra/test.sh installs it)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let log = std::env::temp_dir()
            .join(wxauth_tests::unique("cargo-lambda-watch"))
            .with_extension("log");
        let output = std::fs::File::create(&log).expect("log file");
        let child = Command::new(cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .arg("--env-file")
            .arg(env_file)
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log file"))
            .stderr(output)
            .process_group(0)
            .spawn()
            .expect("spawn cargo lambda watch");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}/lambda-url"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One request; the first one to a function waits for it to compile.
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.base);
        let started = Instant::now();
        loop {
            let mut request = client.request(method.parse().expect("method"), &url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = &body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    return (status, body);
                }
                // The invoke server is not listening yet.
                Err(err) if err.is_connect() && started.elapsed() < Duration::from_secs(300) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!("{method} {url}: {err}\n{}", self.log()),
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The group we made: cargo lambda watch, its cargo runs and the
            // functions. `--` so that kill reads `-<pid>` as a process group, not
            // as an option (`kill -TERM -1234` signals every process there is).
            let _ = std::process::Command::new("kill")
                .args(["-s", "TERM", "--", &format!("-{pid}")])
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_session_phone_logout_through_cargo_lambda_watch() {
    let world = World::new().await;
    let env_file = std::env::temp_dir()
        .join(wxauth_tests::unique("watch"))
        .with_extension("env");
    let mut env: Vec<(&str, String)> = world.function_env();
    env.extend([
        ("AWS_REGION", wxauth_tests::standins::REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ]);
    let text: String = env
        .iter()
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect();
    std::fs::write(&env_file, text).expect("env file");
    let watch = Watch::start(&env_file).await;

    let (code, issued) = world.wechat.issue_code();
    let (status, body) = watch
        .send("POST", "/login/login", None, Some(json!({"code": code})))
        .await;
    assert_eq!(status, 200, "{body}\n{}", watch.log());
    assert_eq!(body["openid"], issued.openid.as_str());
    let token = body["token"].as_str().expect("token").to_owned();

    let (status, body) = watch
        .send("GET", "/check-session/session", Some(&token), None)
        .await;
    assert_eq!(status, 200, "{body}\n{}", watch.log());
    assert_eq!(body["valid"], true);

    let phone_code = world.wechat.issue_phone_code(&issued.openid, "13900139000");
    let (status, body) = watch
        .send(
            "POST",
            "/decrypt-phone/phone",
            Some(&token),
            Some(json!({"code": phone_code})),
        )
        .await;
    assert_eq!(status, 200, "{body}\n{}", watch.log());
    assert_eq!(body["purePhoneNumber"], "13900139000");

    let (status, _) = watch
        .send("DELETE", "/check-session/session", Some(&token), None)
        .await;
    assert_eq!(status, 204, "{}", watch.log());
    let (status, body) = watch
        .send("GET", "/check-session/session", Some(&token), None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let _ = std::fs::remove_file(&env_file);
}
