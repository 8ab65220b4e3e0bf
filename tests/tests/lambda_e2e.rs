//! The release binaries as Lambda runs them: each process polls a Lambda Runtime
//! API emulator for API Gateway HTTP API events, with DynamoDB Local, moto and the
//! fake WeChat behind it, configured only through the environment.

use std::time::Duration;

use serde_json::json;
use wxauth::domain::token::SessionToken;
use wxauth_tests::events::HttpEvent;
use wxauth_tests::invoke::login_event;
use wxauth_tests::logs::{has_metric, metric_records};
use wxauth_tests::runtime::LambdaFunction;
use wxauth_tests::world::{APPID, World, encrypt_for, phone_plaintext, sign};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_session_phone_signature_through_the_runtime_api() {
    let world = World::new().await;
    let env = world.function_env();
    let mut login = LambdaFunction::start("login", &env).await;
    let mut phone = LambdaFunction::start("decrypt-phone", &env).await;
    let mut check = LambdaFunction::start("check-session", &env).await;

    let (code, issued) = world
        .wechat
        .issue_code_for("oE2E00000000000000000000001", None);
    let (status, headers, body) = login.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "{body}\n{}", login.logs.text());
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["openid"], "oE2E00000000000000000000001");
    assert!(body.get("unionid").is_none());
    assert_eq!(body["expiresIn"], 600, "SESSION_TTL_SECONDS's default");
    let token = body["token"].as_str().unwrap().to_owned();

    let (status, _, body) = check
        .call(HttpEvent::new("GET", "/session").bearer(&token).build())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["valid"], true);

    let payload = encrypt_for(&issued, &phone_plaintext(APPID, "13800138000"));
    let (status, _, body) = phone
        .call(
            HttpEvent::new("POST", "/phone")
                .bearer(&token)
                .json(&payload)
                .base64_body()
                .build(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["purePhoneNumber"], "13800138000");

    let raw = r#"{"nickName":"E2E"}"#;
    let signed = json!({"rawData": raw, "signature": sign(raw, &issued.session_key)});
    let (status, _, body) = check
        .call(
            HttpEvent::new("POST", "/session")
                .bearer(&token)
                .json(&signed)
                .build(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["userInfo"]["nickName"], "E2E");

    // Errors come back as HTTP responses in the contract's shape, not invocation errors.
    let (status, headers, body) = check.call(HttpEvent::new("PUT", "/session").build()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(headers["allow"], "GET, POST, DELETE");
    let (status, _, body) = login.call(login_event(&code).build()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_code"))
    );
    let (status, _, body) = phone.call(json!({"not": "an api gateway event"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, _, body) = check.call(HttpEvent::new("POST", "/login").build()).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    // What would abort a process that handed it to lambda_http unchecked.
    let hostile = HttpEvent::new("POST", "/login")
        .header("host", "exa mple.com:99999")
        .build();
    let (status, _, body) = login.call(hostile).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let mut not_base64 = login_event("x").build();
    not_base64["body"] = json!("@@@");
    not_base64["isBase64Encoded"] = json!(true);
    let (status, _, body) = login.call(not_base64).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Phone by code: the access token fetched, then getuserphonenumber.
    let phone_code = world.wechat.issue_phone_code(&issued.openid, "13900139000");
    let (status, _, body) = phone
        .call(
            HttpEvent::new("POST", "/phone")
                .bearer(&token)
                .json(&json!({"code": phone_code}))
                .build(),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Every function is still alive and logged one line per request, no secrets.
    for function in [&mut login, &mut phone, &mut check] {
        assert!(function.is_running());
        function.stop().await;
        let logs = function.logs.text();
        assert!(logs.contains("status=200"), "{logs}");
        for secret in [
            &token,
            &issued.session_key,
            &world.appsecret,
            &issued.openid,
        ] {
            assert!(!logs.contains(secret.as_str()), "leaked {secret}:\n{logs}");
        }
        assert!(!logs.contains("13800138000"), "{logs}");
        assert!(!logs.contains("13900139000"), "{logs}");
    }

    // The metrics, as CloudWatch would read them from the same output.
    let login_metrics = metric_records(&login.logs.text());
    let phone_metrics = metric_records(&phone.logs.text());
    let check_metrics = metric_records(&check.logs.text());
    for (records, function) in [
        (&login_metrics, "login"),
        (&phone_metrics, "decrypt-phone"),
        (&check_metrics, "check-session"),
    ] {
        assert!(!records.is_empty(), "{function} emitted no metric");
        assert!(
            records.iter().all(|r| r["Function"] == function),
            "{records:?}"
        );
    }
    for (records, outcome) in [
        (&login_metrics, "ok"),
        (&login_metrics, "invalid_code"),
        (&login_metrics, "invalid_request"),
        (&phone_metrics, "ok"),
        (&phone_metrics, "invalid_request"),
        (&check_metrics, "ok"),
        (&check_metrics, "method_not_allowed"),
        (&check_metrics, "not_found"),
    ] {
        assert!(
            has_metric(records, "Requests", &[("Outcome", outcome)]),
            "no Requests{{Outcome={outcome}}} in {records:?}"
        );
    }
    assert!(has_metric(
        &login_metrics,
        "WeChatCalls",
        &[("Api", "jscode2session"), ("Result", "0")]
    ));
    assert!(has_metric(
        &login_metrics,
        "WeChatCalls",
        &[("Api", "jscode2session"), ("Result", "40163")]
    ));
    assert!(has_metric(
        &login_metrics,
        "WeChatLatency",
        &[("Api", "jscode2session")]
    ));
    assert!(has_metric(
        &phone_metrics,
        "AccessTokenFetches",
        &[("Mode", "normal")]
    ));
    assert!(has_metric(
        &phone_metrics,
        "WeChatCalls",
        &[("Api", "stable_token"), ("Result", "0")]
    ));
    assert!(has_metric(
        &phone_metrics,
        "WeChatCalls",
        &[("Api", "getuserphonenumber"), ("Result", "0")]
    ));
    // No openid, token, key or phone number in any dimension or value.
    for record in login_metrics
        .iter()
        .chain(&phone_metrics)
        .chain(&check_metrics)
    {
        let text = record.to_string();
        for secret in [
            &token,
            &issued.session_key,
            &world.appsecret,
            &issued.openid,
        ] {
            assert!(!text.contains(secret.as_str()), "{text}");
        }
        assert!(
            !text.contains("1380013") && !text.contains("1390013"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_missing_variable_stops_start_up_and_is_named() {
    let world = World::new().await;
    // (function, variable left out, the variable the error names): without
    // WECHAT_APPID (the one-app shorthand) the apps are what is missing.
    for (binary, left_out, missing) in [
        ("login", "WECHAT_APPID", "WECHAT_APPS"),
        ("login", "WECHAT_SECRET_ID", "WECHAT_SECRET_ID"),
        ("login", "SESSION_TABLE", "SESSION_TABLE"),
        ("decrypt-phone", "WECHAT_APPID", "WECHAT_APPS"),
        ("decrypt-phone", "SESSION_TABLE", "SESSION_TABLE"),
        ("check-session", "SESSION_TABLE", "SESSION_TABLE"),
        // Half of the optional pair is a mistake, named.
        ("check-session", "WECHAT_APPID", "WECHAT_APPS"),
        ("check-session", "WECHAT_SECRET_ID", "WECHAT_SECRET_ID"),
        ("authorizer", "SESSION_TABLE", "SESSION_TABLE"),
    ] {
        let env: Vec<_> = world
            .function_env()
            .into_iter()
            .filter(|(k, _)| *k != left_out)
            .collect();
        let mut function = LambdaFunction::start(binary, &env).await;
        let status = function
            .wait_exit(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{binary} kept running without {missing}"));
        assert!(!status.success());
        let logs = function.logs.text();
        assert!(
            logs.contains(&format!("missing required environment variable {missing}")),
            "{binary}: {logs}"
        );
    }
}

/// SESSION_TTL_SECONDS sets how long a session lives from login: in the answer,
/// in the table's item (its TTL attribute) and in what GET /session counts down.
#[tokio::test]
async fn the_session_lifetime_comes_from_session_ttl_seconds() {
    let world = World::new().await;
    let mut env = world.function_env();
    env.push(("SESSION_TTL_SECONDS", "120".into()));
    let mut login = LambdaFunction::start("login", &env).await;
    let mut check = LambdaFunction::start("check-session", &world.function_env()).await;

    let (code, _) = world.wechat.issue_code();
    let (status, _, body) = login.call(login_event(&code).build()).await;
    assert_eq!(
        (status, body["expiresIn"].as_i64()),
        (200, Some(120)),
        "{body}"
    );
    let token = body["token"].as_str().unwrap();

    let key = SessionToken::parse(token).unwrap().key();
    let item = world.item(key.as_str()).await.expect("the session item");
    let number = |name: &str| item[name].as_n().unwrap().parse::<i64>().unwrap();
    assert_eq!(number("expiresAt") - number("createdAt"), 120);

    let (status, _, body) = check
        .call(HttpEvent::new("GET", "/session").bearer(token).build())
        .await;
    assert_eq!(status, 200, "{body}");
    let left = body["expiresIn"].as_i64().unwrap();
    assert!((1..=120).contains(&left), "{body}");
}

/// AWS_LAMBDA_LOG_FORMAT=JSON (what the template's LoggingConfig sets): every
/// line is one JSON object with the level, the message and the request id.
/// AWS_LAMBDA_LOG_LEVEL, or without it RUST_LOG, sets the level.
#[tokio::test]
async fn logs_the_lambda_way() {
    let world = World::new().await;
    let mut env = world.function_env();
    env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".into()));
    let mut check = LambdaFunction::start("check-session", &env).await;
    let (status, _, _) = check.call(HttpEvent::new("GET", "/session").build()).await;
    assert_eq!(status, 401);
    let mut quiet_env = world.function_env();
    quiet_env.push(("AWS_LAMBDA_LOG_LEVEL", "WARN".into()));
    let mut quiet = LambdaFunction::start("check-session", &quiet_env).await;
    let (status, _, _) = quiet.call(HttpEvent::new("GET", "/session").build()).await;
    assert_eq!(status, 401);
    // The control: plain text at the default level has the request line.
    let mut plain = LambdaFunction::start("check-session", &world.function_env()).await;
    let (status, _, _) = plain.call(HttpEvent::new("GET", "/session").build()).await;
    assert_eq!(status, 401);
    let mut rust_log_env = world.function_env();
    rust_log_env.push(("RUST_LOG", "warn".into()));
    let mut rust_log = LambdaFunction::start("check-session", &rust_log_env).await;
    let (status, _, _) = rust_log
        .call(HttpEvent::new("GET", "/session").build())
        .await;
    assert_eq!(status, 401);

    // The processes are stopped so that every line they wrote has been read.
    check.stop().await;
    quiet.stop().await;
    rust_log.stop().await;
    plain.stop().await;
    let plain_logs = plain.logs.text();
    assert!(plain_logs.contains("status=401"), "{plain_logs}");
    let logs = check.logs.text();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let request = lines
        .iter()
        .find(|line| line["fields"]["message"] == "request")
        .unwrap_or_else(|| panic!("no request line in {logs}"));
    assert_eq!(request["level"], "INFO", "{request}");
    assert_eq!(request["span"]["requestId"], "req-0001", "{request}");
    assert_eq!(request["fields"]["status"], 401, "{request}");
    assert_eq!(request["fields"]["error"], "unauthorized", "{request}");
    for quiet in [quiet, rust_log] {
        let quiet_logs = quiet.logs.text();
        assert!(!quiet_logs.contains("status=401"), "{quiet_logs}");
    }
}

/// Local emulators send a duration, not an epoch time, as the deadline
/// (`cargo lambda watch`: 600000): it is unknown, and the 8-second budget applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_in_the_past_is_unknown() {
    let world = World::new().await;
    let mut login = LambdaFunction::start("login", &world.function_env()).await;
    login.deadline_header = Some(600_000);
    let (code, _) = world.wechat.issue_code();
    let (status, _, body) = login.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "{body}\n{}", login.logs.text());
    assert_eq!(world.wechat.calls(), 1);
}

/// The appsecret never crosses a network in clear text: an http:// WeChat base
/// that is not a loopback host stops start-up, naming the variable.
#[tokio::test]
async fn a_clear_text_wechat_base_stops_start_up() {
    let world = World::new().await;
    for binary in ["login", "decrypt-phone", "check-session"] {
        let mut env = world.function_env();
        for (name, value) in env.iter_mut() {
            if *name == "WECHAT_API_BASE" {
                *value = "http://api.weixin.qq.com".into();
            }
        }
        let mut function = LambdaFunction::start(binary, &env).await;
        let status = function
            .wait_exit(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{binary} started with an http:// WeChat base"));
        assert!(!status.success());
        let logs = function.logs.text();
        assert!(
            logs.contains("WECHAT_API_BASE") && logs.contains("https://"),
            "{binary}: {logs}"
        );
    }
}

/// WeChat spent the code on our first attempt, whose answer never came back in
/// time: the retry gets 40163. The client is told to log in again (401
/// invalid_code), and the log and the metrics say it was our retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_spent_by_our_own_timed_out_attempt_is_told_apart() {
    let world = World::new().await;
    let mut login = LambdaFunction::start("login", &world.function_env()).await;
    let (code, _) = world.wechat.issue_code();
    world.wechat.stall_next(1);
    let (status, _, body) = login.call(login_event(&code).build()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_code")),
        "{body}"
    );
    assert_eq!(world.wechat.calls(), 2);
    login.stop().await;
    let logs = login.logs.text();
    assert!(logs.contains("our own earlier attempt"), "{logs}");
    assert!(has_metric(
        &metric_records(&logs),
        "CodeSpentByOurRetry",
        &[("Function", "login"), ("Api", "jscode2session")]
    ));
    // A plain reused code is the client's: no such line.
    let mut login = LambdaFunction::start("login", &world.function_env()).await;
    let (status, _, _) = login.call(login_event(&code).build()).await;
    assert_eq!(status, 401);
    login.stop().await;
    assert!(!login.logs.text().contains("our own earlier attempt"));
}

/// The same for a getPhoneNumber code: WeChat spent it on our first attempt,
/// whose answer never came back in time, and answers the retry 40029. The
/// client is told the code is gone (401 invalid_code); the log and the metrics
/// say it was our retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_code_spent_by_our_own_timed_out_attempt_is_told_apart() {
    let world = World::new().await;
    let (token, issued) = wxauth_tests::invoke::logged_in(&world, &world.login().await).await;
    let mut phone = LambdaFunction::start("decrypt-phone", &world.function_env()).await;
    let phone_code = world.wechat.issue_phone_code(&issued.openid, "13900139000");
    world.wechat.stall_next(1);
    let by_code = |code: &str| {
        HttpEvent::new("POST", "/phone")
            .bearer(&token)
            .json(&json!({"code": code}))
            .build()
    };
    let (status, _, body) = phone.call(by_code(&phone_code)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_code")),
        "{body}"
    );
    assert_eq!(world.wechat.user_api_calls().0, 2);
    // A plain reused code is the client's: no such line.
    let (status, _, _) = phone.call(by_code(&phone_code)).await;
    assert_eq!(status, 401);
    phone.stop().await;
    let logs = phone.logs.text();
    assert_eq!(logs.matches("our own earlier attempt").count(), 1, "{logs}");
    assert!(has_metric(
        &metric_records(&logs),
        "CodeSpentByOurRetry",
        &[("Function", "decrypt-phone"), ("Api", "getuserphonenumber")]
    ));
    assert!(!logs.contains("13900139000"));
}

/// On AWS every endpoint is HTTPS. Here DynamoDB Local, moto and the WeChat
/// simulator sit behind TLS with a CA made for this run, which only
/// `AWS_CA_BUNDLE` names: the release binaries trust it (for the AWS clients
/// and the WeChat client alike) on top of their compiled-in roots, and the
/// whole flow works, JWTs included. Without the bundle the same endpoints
/// are refused (503, nobody logged out); an unreadable or empty bundle stops
/// start-up, naming the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_over_tls_with_the_aws_ca_bundle() {
    use wxauth_tests::stack::Stack;
    let world = World::new().await;
    let ca = wxauth_tests::tls::TestCa::new();
    let env = world.function_env_over_tls(&ca).await;
    let arn = world
        .standins
        .create_secret(
            &serde_json::to_string(&wxauth::domain::jwt::generate_key("tls").unwrap()).unwrap(),
        )
        .await;
    let shared = vec![("ISSUER", "https://auth.wxauth.test".to_owned())];
    let mut stack =
        Stack::start_with(env.clone(), &shared, &[("SIGNING_KEY_SECRET_ID", arn)]).await;
    let (login, _) = stack.log_in(&world, "oTLS0000000000000000000001").await;
    let token = login["token"].as_str().unwrap().to_owned();
    assert_eq!(
        token.matches('.').count(),
        2,
        "a JWT: the key came over TLS"
    );
    assert_eq!(stack.session(&token).await.0, 200);
    assert!(stack.allowed(&token).await);
    // Phone by code: the access token (Secrets Manager, WeChat) over TLS too.
    let code = world
        .wechat
        .issue_phone_code("oTLS0000000000000000000001", "13911112222");
    let (status, phone) = stack
        .with_json("POST", "/phone", &token, &json!({"code": code}))
        .await;
    assert_eq!(status, 200, "{phone}");
    let (status, refreshed) = stack.refresh(login["refreshToken"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");
    let logs = stack.stop().await;
    assert!(!logs.contains("PRIVATE KEY"));

    // The same endpoints without the bundle: the run's CA is trusted nowhere.
    let untrusted: Vec<(&str, String)> = env
        .iter()
        .filter(|(name, _)| *name != "AWS_CA_BUNDLE")
        .cloned()
        .collect();
    let mut login = LambdaFunction::start("login", &untrusted).await;
    let (code, _) = world.wechat.issue_code();
    let (status, _, body) = login.call(login_event(&code).build()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("upstream_unavailable")),
        "{body}"
    );
    login.stop().await;

    let empty = std::env::temp_dir().join(wxauth_tests::unique("empty-bundle"));
    std::fs::write(&empty, "no certificate here\n").unwrap();
    for bundle in [
        empty.display().to_string(),
        "/nonexistent/ca.pem".to_owned(),
    ] {
        let mut bad = env.clone();
        for (name, value) in bad.iter_mut() {
            if *name == "AWS_CA_BUNDLE" {
                *value = bundle.clone();
            }
        }
        for binary in ["login", "check-session", "authorizer"] {
            let mut function = LambdaFunction::start(binary, &bad).await;
            let exit = function
                .wait_exit(Duration::from_secs(10))
                .await
                .expect("exits at start-up");
            assert!(!exit.success());
            assert!(
                function.logs.text().contains("AWS_CA_BUNDLE"),
                "{binary}: {}",
                function.logs.text()
            );
        }
    }
    let _ = std::fs::remove_file(empty);
}
