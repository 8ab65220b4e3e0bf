//! `sam local` on Docker, as docs/deployment.md's recipe runs it: `sam local invoke` of
//! every function with the events in infra/events/ (and the seed
//! infra/local_dynamodb.py writes), then the flow docs/deployment.md describes, over HTTP through
//! `sam local start-api`, against DynamoDB Local, moto and the WeChat simulator
//! running on this machine.
//!
//! What differs from a user's machine, all CI details set by `infra/test.sh`:
//! - the invoke image is a local stand-in for `provided.al2023`
//!   (`WXAUTH_SAM_LOCAL_IMAGE`, made by infra/sam-local-image.sh: no registry here);
//! - the functions are the x86_64 release binaries, laid out as `sam build` laid
//!   out the arm64 ones (the template's arm64 would need emulation in Docker
//!   here); the template is sam build's, with the architecture switched;
//! - the stand-ins run on the host, reached from each container's loopback
//!   (`wxauth_tests::docker::LoopbackBridge`) where a user runs them as
//!   containers on the `wxauth-local` network.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wechat_sim::{Issued, WeChatSim};
use wxauth_tests::docker::LoopbackBridge;
use wxauth_tests::events::authorizer_event;
use wxauth_tests::runtime::bin_dir;
use wxauth_tests::template::{functions, repo_root};
use wxauth_tests::world::{World, encrypt_for, phone_plaintext};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn fixture() -> Value {
    let text = std::fs::read_to_string(repo_root().join("infra/events/fixture.json"))
        .expect("infra/events/fixture.json");
    serde_json::from_str(&text).expect("fixture JSON")
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {value}"))
}

/// sam build's output, switched to the host's architecture: its template with
/// `x86_64` for `arm64`, and each function folder holding the x86_64 release
/// binary as `bootstrap`.
fn stage_for_the_host(into: &Path) -> PathBuf {
    let build = var("WXAUTH_SAM_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".aws-sam/build"));
    let built = std::fs::read_to_string(build.join("template.yaml")).unwrap_or_else(|e| {
        panic!(
            "{}/template.yaml: {e}; run `sam build` first (infra/test.sh does)",
            build.display()
        )
    });
    let switched = built.replace("- arm64", "- x86_64");
    assert_ne!(
        switched, built,
        "sam build's template names no arm64 architecture"
    );
    std::fs::create_dir_all(into).expect("staging folder");
    let template = into.join("template.yaml");
    std::fs::write(&template, switched).expect("staged template");
    for function in functions() {
        assert!(
            built.contains(&format!("CodeUri: {}", function.logical_id)),
            "sam build's template points {} elsewhere",
            function.logical_id
        );
        let folder = into.join(&function.logical_id);
        std::fs::create_dir_all(&folder).expect("function folder");
        std::fs::copy(bin_dir().join(&function.binary), folder.join("bootstrap"))
            .unwrap_or_else(|e| panic!("{}: {e}", function.binary));
    }
    template
}

/// infra/env.json as docs/deployment.md uses it, pointed at this run's stand-ins.
fn env_file(world: &World, wechat: &str, signing_secret: &str, into: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("infra/env.json")).expect("env.json");
    let mut env: Value = serde_json::from_str(&text).expect("env.json is JSON");
    for section in env.as_object_mut().expect("sections").values_mut() {
        for (name, value) in section.as_object_mut().expect("variables") {
            let ours = match name.as_str() {
                "SESSION_TABLE" => world.table.clone(),
                "LOGIN_LOG_TABLE" => world.log_table.clone(),
                "AWS_ENDPOINT_URL_DYNAMODB" => world.standins.dynamodb.clone(),
                "AWS_ENDPOINT_URL_SECRETS_MANAGER" => world.standins.secrets_manager.clone(),
                "WECHAT_SECRET_ID" => world.secret_arn.clone(),
                "WECHAT_API_BASE" => wechat.to_owned(),
                _ => continue,
            };
            *value = json!(ours);
        }
    }
    env["RotateSigningKeyFunction"] = json!({
        "SIGNING_KEY_SECRET_ID": signing_secret,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": world.standins.secrets_manager,
    });
    let path = into.join("env.json");
    std::fs::write(&path, env.to_string()).expect("env file");
    path
}

struct Sam {
    template: PathBuf,
    env: PathBuf,
    parameters: String,
}

impl Sam {
    fn command(&self, subcommand: &[&str]) -> tokio::process::Command {
        let program = var("WXAUTH_SAM")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".tools/venv/bin/sam"));
        let mut command = tokio::process::Command::new(program);
        command
            .args(subcommand)
            .arg("--template")
            .arg(&self.template)
            .arg("--env-vars")
            .arg(&self.env)
            .args(["--parameter-overrides", &self.parameters])
            .current_dir(repo_root())
            .env("SAM_CLI_TELEMETRY", "0")
            // What SAM hands the containers: any credentials do for the stand-ins.
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_REGION", "us-east-1")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(image) = var("WXAUTH_SAM_LOCAL_IMAGE") {
            command.args(["--skip-pull-image", "--invoke-image", &image]);
        }
        command
    }

    /// `sam local invoke <function> -e <event>`: the function's answer.
    async fn invoke(&self, function: &str, event: &Path) -> Value {
        let event = event.to_str().expect("UTF-8 path");
        let out = self
            .command(&["local", "invoke", function, "--event", event])
            .output()
            .await
            .expect("sam local invoke");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{function}: {stdout}\n{stderr}");
        // The answer is the last line on stdout; SAM's own messages go to stderr.
        let answer = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        serde_json::from_str(answer)
            .unwrap_or_else(|e| panic!("{function}: {e}: {stdout}\n{stderr}"))
    }
}

/// An HTTP answer: (status, parsed JSON body or Null).
fn http_answer(status: u16, body: &str) -> (u16, Value) {
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn http_body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sam_local_invokes_every_function_and_serves_the_readme_flow() {
    let world = World::new().await;
    let fixture = fixture();
    let appid = text(&fixture, "appid");
    // The events' app: the simulator knows its appid and this world's appsecret.
    let wechat = WeChatSim::start(appid, &world.appsecret)
        .await
        .expect("WeChat simulator");
    let signing_secret = world
        .standins
        .create_secret(wxauth_tests::rotation::UNROTATED_SECRET)
        .await;
    let work = std::env::temp_dir().join(wxauth_tests::unique("wxauth-sam-local"));
    let template = stage_for_the_host(&work);
    let env = env_file(&world, &wechat.base, &signing_secret, &work);
    let sam = Sam {
        template,
        env,
        parameters: format!("WeChatAppId={appid} WeChatSecretArn={}", world.secret_arn),
    };
    let bridge = LoopbackBridge::start(&[
        &world.standins.dynamodb,
        &world.standins.secrets_manager,
        &wechat.base,
    ])
    .await;

    // The tables' seed, by the script docs/deployment.md runs.
    let python = var("WXAUTH_PYTHON").unwrap_or_else(|| "python3".into());
    let seeded = std::process::Command::new(python)
        .arg(repo_root().join("infra/local_dynamodb.py"))
        .args(["--endpoint", &world.standins.dynamodb])
        .args(["--table", &world.table, "--log-table", &world.log_table])
        .output()
        .expect("infra/local_dynamodb.py");
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );

    // --- sam local invoke, each function ---------------------------------------
    let events = repo_root().join("infra/events");
    let answer = sam
        .invoke("CheckSessionFunction", &events.join("session-get.json"))
        .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(http_body(&answer)["valid"], true, "{answer}");
    let answer = sam
        .invoke("CheckSessionFunction", &events.join("session-post.json"))
        .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(
        http_body(&answer)["userInfo"]["nickName"],
        "SAM",
        "{answer}"
    );
    let answer = sam
        .invoke("DecryptPhoneFunction", &events.join("phone.json"))
        .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(http_body(&answer)["phoneNumber"], "13800138000", "{answer}");

    let authorizer_event_file = work.join("authorizer.json");
    let bearer = format!("Bearer {}", text(&fixture, "token"));
    std::fs::write(
        &authorizer_event_file,
        authorizer_event(Some(&bearer)).to_string(),
    )
    .expect("authorizer event");
    let answer = sam
        .invoke("AuthorizerFunction", &authorizer_event_file)
        .await;
    assert_eq!(answer["isAuthorized"], true, "{answer}");
    assert_eq!(
        answer["context"]["userId"],
        text(&fixture, "userId"),
        "{answer}"
    );

    let rotation_event = work.join("rotation.json");
    std::fs::write(
        &rotation_event,
        json!({
            "Step": "createSecret",
            "SecretId": signing_secret,
            "ClientRequestToken": "33333333-aaaa-4000-8000-000000000001",
        })
        .to_string(),
    )
    .expect("rotation event");
    sam.invoke("RotateSigningKeyFunction", &rotation_event)
        .await;
    let pending = world
        .standins
        .secrets_client()
        .await
        .get_secret_value()
        .secret_id(&signing_secret)
        .version_stage("AWSPENDING")
        .send()
        .await
        .expect("createSecret made an AWSPENDING version");
    let key: Value = serde_json::from_str(pending.secret_string().unwrap_or("")).expect("key JSON");
    assert!(
        key["kid"].is_string() && key["privateKey"].is_string(),
        "{{kid, privateKey}}"
    );

    wechat.accept_code(
        text(&fixture, "code"),
        Issued::new("oSAMLOCALLOGIN0000000000001", None),
    );
    let answer = sam
        .invoke("LoginFunction", &events.join("login.json"))
        .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert!(http_body(&answer)["token"].is_string(), "{answer}");

    // --- sam local start-api: the flow docs/deployment.md describes, over HTTP --------------------------
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("addr").port()
    };
    let api_log = work.join("start-api.log");
    let log = std::fs::File::create(&api_log).expect("log file");
    let mut api = sam
        .command(&[
            "local",
            "start-api",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args(["--warm-containers", "EAGER"])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("sam local start-api");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let logs = || std::fs::read_to_string(&api_log).unwrap_or_default();

    // Up when it answers; a route with no token is refused without any I/O.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(response) = client.get(format!("{base}/session")).send().await {
            let status = response.status().as_u16();
            let (status, body) = http_answer(status, &response.text().await.unwrap_or_default());
            assert_eq!(
                (status, &body["error"]),
                (401, &json!("unauthorized")),
                "{}",
                logs()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sam local start-api never answered:\n{}",
            logs()
        );
        assert!(
            api.try_wait().expect("status").is_none(),
            "start-api exited:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let call = |method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut request = client.request(method, format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        async move {
            let response = request.send().await.expect("sam local start-api answers");
            let status = response.status().as_u16();
            http_answer(status, &response.text().await.expect("body"))
        }
    };
    use reqwest::Method;

    let openid = "oSAMLOCALAPI000000000000001";
    let (code, issued) = wechat.issue_code_for(openid, None);
    let (status, login) = call(Method::POST, "/login", None, Some(json!({"code": code}))).await;
    assert_eq!(status, 200, "{login}\n{}", logs());
    assert_eq!(login["openid"], openid);
    assert_eq!(login["newUser"], true);
    assert_eq!(login["expiresIn"], 600);
    let token = text(&login, "token").to_owned();
    let user_id = text(&login, "userId").to_owned();

    let (status, session) = call(Method::GET, "/session", Some(&token), None).await;
    assert_eq!(
        (status, &session["valid"]),
        (200, &json!(true)),
        "{session}"
    );
    assert_eq!(session["userId"], user_id.as_str());

    let phone_code = wechat.issue_phone_code(openid, "13900139000");
    let (status, phone) = call(
        Method::POST,
        "/phone",
        Some(&token),
        Some(json!({"code": phone_code})),
    )
    .await;
    assert_eq!(
        (status, &phone["purePhoneNumber"]),
        (200, &json!("13900139000")),
        "{phone}"
    );
    let payload = encrypt_for(&issued, &phone_plaintext(appid, "13800138000"));
    let (status, phone) = call(Method::POST, "/phone", Some(&token), Some(payload)).await;
    assert_eq!(
        (status, &phone["purePhoneNumber"]),
        (200, &json!("13800138000")),
        "{phone}"
    );

    // GET /me behind the Lambda authorizer, which sam local runs for HTTP APIs.
    let (status, me) = call(Method::GET, "/me", Some(&token), None).await;
    assert_eq!(status, 200, "{me}\n{}", logs());
    assert_eq!(me["userId"], user_id.as_str());
    assert_eq!(me["openid"], openid);

    let (status, _) = call(Method::DELETE, "/session", Some(&token), None).await;
    assert_eq!(status, 204, "{}", logs());
    let (status, refused) = call(Method::GET, "/session", Some(&token), None).await;
    assert_eq!(
        (status, &refused["error"]),
        (401, &json!("unauthorized")),
        "{refused}"
    );
    let (status, _) = call(Method::GET, "/me", Some(&token), None).await;
    assert!(
        matches!(status, 401 | 403),
        "after logout GET /me answered {status}"
    );

    // The containers really went through the stand-ins (not some other endpoint).
    let dynamodb = bridge.counts(&world.standins.dynamodb);
    assert!(
        dynamodb.op("GetItem") > 0 && dynamodb.op("TransactWriteItems") > 0,
        "{dynamodb:?}"
    );
    assert!(bridge.counts(&wechat.base).connections > 0);

    // SAM removes its containers on SIGINT, as on Ctrl-C.
    if let Some(pid) = api.id() {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(60), api.wait())
        .await
        .is_err()
    {
        let _ = api.start_kill();
    }
    for id in bridge.attached() {
        let _ = wxauth_tests::docker::docker(&["rm", "--force", &id]).await;
    }
    bridge.stop().await;
    let _ = std::fs::remove_dir_all(&work);
}
