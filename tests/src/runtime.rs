//! A Lambda Runtime API emulator and the function processes it drives: the
//! release binaries run exactly as they do in a Lambda sandbox.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use crate::logs::CapturedLogs;
use crate::server::{HttpResponse, Received, respond, serve};

/// What the function answered for one invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

struct Invocation {
    id: String,
    event: Value,
    deadline_ms: u64,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Shared {
    pending: HashMap<String, oneshot::Sender<Outcome>>,
    init_error: Option<String>,
    /// When the process first asked for an invocation: the end of its init.
    first_next_at: Option<Instant>,
}

/// Where the release binaries are: `WXAUTH_BIN_DIR`, else `release/` in the
/// target directory this test was built in.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("WXAUTH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("release"))
}

/// The cargo target directory this program was built in, wherever
/// `CARGO_TARGET_DIR` or `build.target-dir` put it: the parent of the profile
/// folder (`debug`, `release`) above the running executable
/// (`<target>/debug/deps/<test>` or `<target>/release/<bin>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable's path");
    exe.ancestors()
        .find(|dir| {
            matches!(
                dir.file_name().and_then(|n| n.to_str()),
                Some("debug" | "release")
            )
        })
        .and_then(|profile| profile.parent())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

pub struct LambdaFunction {
    queue: mpsc::UnboundedSender<Invocation>,
    shared: Arc<Mutex<Shared>>,
    child: Child,
    pub logs: CapturedLogs,
    readers: Vec<tokio::task::JoinHandle<()>>,
    started_at: Instant,
    next_id: u64,
    /// Timeout the emulated function is configured with.
    pub timeout: Duration,
    /// Sent as `Lambda-Runtime-Deadline-Ms` instead of now + timeout, as local
    /// emulators do (`cargo lambda watch` sends a duration: 600000).
    pub deadline_header: Option<u64>,
}

impl LambdaFunction {
    /// Starts `binary` (a cargo bin name) with `env` on top of the variables
    /// Lambda itself sets. The environment is otherwise empty: no `~/.aws`, no
    /// stray AWS variables from the developer's shell.
    pub async fn start(binary: &str, env: &[(&str, String)]) -> Self {
        let path = bin_dir().join(binary);
        assert!(
            path.exists(),
            "{} is missing: build the release binaries first (infra/test.sh does)",
            path.display()
        );
        Self::start_command(binary, path.as_os_str(), &[], env).await
    }

    /// Starts any Lambda runtime client (`program args...`) as function `name`.
    pub async fn start_command(
        name: &str,
        program: &std::ffi::OsStr,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel::<Invocation>();
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = Arc::clone(&shared);
        let addr =
            serve(move |request| runtime_api(Arc::clone(&state), Arc::clone(&receiver), request))
                .await;

        let home = std::env::temp_dir().join(crate::unique("wxauth-home"));
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("HOME", &home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[$LATEST]test")
            .env("AWS_REGION", crate::standins::REGION)
            .env("AWS_DEFAULT_REGION", crate::standins::REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_SESSION_TOKEN", "test")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started_at = Instant::now();
        let mut child = command.spawn().expect("spawn function name");
        let logs = CapturedLogs::default();
        let mut readers = Vec::new();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            readers.push(tokio::spawn(async move {
                let mut pipe = pipe;
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    logs.append(&buf[..n]);
                }
            }));
        }
        Self {
            queue,
            shared,
            child,
            logs,
            readers,
            started_at,
            next_id: 0,
            timeout: Duration::from_secs(10),
            deadline_header: None,
        }
    }

    /// Process start to its first `GET /runtime/invocation/next`: the init
    /// duration Lambda reports. Waits for it (at most `within`).
    pub async fn init_duration(&self, within: Duration) -> Option<Duration> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(at) = self.shared.lock().expect("shared").first_next_at {
                return Some(at - self.started_at);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// Peak resident set size (`VmHWM`) in KiB, while the process runs.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Sends one event and waits for the function's answer.
    pub async fn invoke(&mut self, event: Value) -> Outcome {
        self.next_id += 1;
        let (reply, answer) = oneshot::channel();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        self.queue
            .send(Invocation {
                id: format!("req-{:04}", self.next_id),
                event,
                deadline_ms: self
                    .deadline_header
                    .unwrap_or(now_ms + self.timeout.as_millis() as u64),
                reply,
            })
            .expect("runtime queue open");
        match tokio::time::timeout(self.timeout + Duration::from_secs(5), answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => panic!(
                "runtime dropped the invocation; logs:\n{}",
                self.logs.text()
            ),
            Err(_) => panic!(
                "function did not answer within its timeout; init error: {:?}; logs:\n{}",
                self.shared.lock().expect("shared").init_error,
                self.logs.text()
            ),
        }
    }

    /// Invokes and returns (status, headers, parsed body) of the HTTP response.
    pub async fn call(&mut self, event: Value) -> (u16, Value, Value) {
        match self.invoke(event).await {
            Outcome::Response(response) => {
                let status = response["statusCode"].as_u64().expect("statusCode") as u16;
                let body = response["body"].as_str().unwrap_or("");
                let body = if body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(body).expect("JSON body")
                };
                (status, response["headers"].clone(), body)
            }
            Outcome::Error(error) => panic!(
                "function reported an invocation error: {error}; logs:\n{}",
                self.logs.text()
            ),
        }
    }

    /// Ends the process; once it returns, `logs` holds everything it wrote.
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
    }

    /// Waits for the process to exit (it should not, unless start-up failed).
    /// Once it returns, `logs` holds everything the process wrote.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .ok()?
            .ok()?;
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        Some(status)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

async fn runtime_api(
    shared: Arc<Mutex<Shared>>,
    receiver: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>>,
    request: Received,
) -> HttpResponse {
    const PREFIX: &str = "/2018-06-01/runtime/";
    let Some(route) = request.path.strip_prefix(PREFIX) else {
        return respond(404, "text/plain", "unknown path");
    };
    let parsed = || serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
    match (request.method.as_str(), route) {
        ("GET", "invocation/next") => {
            shared
                .lock()
                .expect("shared")
                .first_next_at
                .get_or_insert_with(Instant::now);
            let Some(invocation) = receiver.lock().await.recv().await else {
                return respond(500, "text/plain", "emulator shutting down");
            };
            shared
                .lock()
                .expect("shared")
                .pending
                .insert(invocation.id.clone(), invocation.reply);
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", &invocation.id)
                .header(
                    "lambda-runtime-deadline-ms",
                    invocation.deadline_ms.to_string(),
                )
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:wxauth",
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                )
                .body(Full::new(Bytes::from(invocation.event.to_string())))
                .expect("valid response")
        }
        ("POST", "init/error") => {
            shared.lock().expect("shared").init_error =
                Some(String::from_utf8_lossy(&request.body).into_owned());
            respond(202, "application/json", r#"{"status":"OK"}"#)
        }
        ("POST", route) => {
            let Some(rest) = route.strip_prefix("invocation/") else {
                return respond(404, "text/plain", "unknown path");
            };
            let (id, outcome) = if let Some(id) = rest.strip_suffix("/response") {
                (id, Outcome::Response(parsed()))
            } else if let Some(id) = rest.strip_suffix("/error") {
                (id, Outcome::Error(parsed()))
            } else {
                return respond(404, "text/plain", "unknown path");
            };
            match shared.lock().expect("shared").pending.remove(id) {
                Some(reply) => {
                    let _ = reply.send(outcome);
                    respond(202, "application/json", r#"{"status":"OK"}"#)
                }
                None => respond(
                    400,
                    "application/json",
                    r#"{"errorMessage":"unknown request id"}"#,
                ),
            }
        }
        _ => respond(404, "text/plain", "unknown path"),
    }
}
