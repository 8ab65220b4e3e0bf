//! No session_key, appsecret or raw token in any response or log line; openids
//! and phone numbers only masked in logs. Its own test binary: it installs the
//! process-wide log capture.

use serde_json::json;
use wxauth_tests::events::HttpEvent;
use wxauth_tests::invoke::{call, login_event};
use wxauth_tests::logs::CapturedLogs;
use wxauth_tests::world::{APPID, World, encrypt_for, phone_plaintext, sign};

#[tokio::test]
async fn no_secret_reaches_a_response_or_a_log_line() {
    let logs = CapturedLogs::default();
    logs.install_global();
    let world = World::new().await;
    let (login, phone, check) = (
        world.login().await,
        world.phone().await,
        world.check().await,
    );
    let mut responses = Vec::new();
    let mut tokens = Vec::new();
    let mut keys = Vec::new();
    let mut openids = Vec::new();

    for _ in 0..2 {
        let (code, issued) = world.wechat.issue_code();
        let answer = call(&login, login_event(&code)).await;
        let token = answer.body["token"].as_str().unwrap().to_owned();
        responses.push(answer.raw);
        responses.push(call(&login, login_event(&code)).await.raw);
        responses.push(
            call(&check, HttpEvent::new("GET", "/session").bearer(&token))
                .await
                .raw,
        );
        let raw = r#"{"nickName":"n"}"#;
        for signature in [sign(raw, &issued.session_key), "0".repeat(40)] {
            let body = json!({"rawData": raw, "signature": signature});
            responses.push(
                call(
                    &check,
                    HttpEvent::new("POST", "/session")
                        .bearer(&token)
                        .json(&body),
                )
                .await
                .raw,
            );
        }
        for payload in [
            encrypt_for(&issued, &phone_plaintext(APPID, "13912345678")),
            encrypt_for(&issued, &phone_plaintext("wxother", "13912345678")),
            json!({"encryptedData": "AAAA", "iv": "AAAA"}),
        ] {
            responses.push(
                call(
                    &phone,
                    HttpEvent::new("POST", "/phone")
                        .bearer(&token)
                        .json(&payload),
                )
                .await
                .raw,
            );
        }
        tokens.push(token);
        keys.push(issued.session_key);
        openids.push(issued.openid);
    }
    for code in [
        "errcode-40226",
        "errcode-45011",
        "errcode--1",
        "html",
        "errcode-40013",
    ] {
        responses.push(call(&login, login_event(code)).await.raw);
    }
    world.wechat.rotate_secret("something-else");
    responses.push(call(&login, login_event("any")).await.raw);

    let logs = logs.text();
    assert!(
        logs.contains("login succeeded"),
        "logs were captured:\n{logs}"
    );
    assert!(logs.contains("status=200"), "{logs}");
    let responses = responses.join("\n");
    for secret in keys.iter().chain(&tokens).chain([&world.appsecret]) {
        assert!(
            !logs.contains(secret.as_str()),
            "log leaks {secret}:\n{logs}"
        );
    }
    // No response carries a session_key or the appsecret. Tokens are answered
    // by login, once each (below).
    for secret in keys.iter().chain([&world.appsecret]) {
        assert!(
            !responses.contains(secret.as_str()),
            "response leaks a secret"
        );
    }
    for openid in &openids {
        assert!(
            !logs.contains(openid.as_str()),
            "log shows a full openid:\n{logs}"
        );
    }
    assert!(!logs.contains("13912345678"), "log shows a phone number");
    // Each token appears in exactly the one login response that issued it.
    for token in &tokens {
        assert_eq!(responses.matches(token.as_str()).count(), 1);
    }
}
