//! The release binaries as Lambda runs them: each process polls a Lambda Runtime
//! API emulator for API Gateway HTTP API events, with DynamoDB Local, moto and the
//! fake WeChat behind it, configured only through the environment.

use std::time::Duration;

use serde_json::json;
use wxauth_tests::events::HttpEvent;
use wxauth_tests::invoke::login_event;
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
    let (status, headers, body) = check.call(HttpEvent::new("PUT", "/login").build()).await;
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

    // Every function is still alive and logged one line per request, no secrets.
    for function in [&mut login, &mut phone, &mut check] {
        assert!(function.is_running());
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
    }
}

#[tokio::test]
async fn a_missing_variable_stops_start_up_and_is_named() {
    let world = World::new().await;
    for (binary, missing) in [
        ("login", "WECHAT_APPID"),
        ("login", "WECHAT_SECRET_ID"),
        ("login", "SESSION_TABLE"),
        ("decrypt-phone", "WECHAT_APPID"),
        ("decrypt-phone", "SESSION_TABLE"),
        ("check-session", "SESSION_TABLE"),
    ] {
        let env: Vec<_> = world
            .function_env()
            .into_iter()
            .filter(|(k, _)| *k != missing)
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
