//! No session_key, appsecret or raw token in any response or log line; openids
//! and phone numbers only masked in logs. Its own test binary: it installs the
//! process-wide log capture.

use serde_json::json;
use wxauth_tests::events::{HttpEvent, authorizer_event};
use wxauth_tests::invoke::{call, login_event};
use wxauth_tests::logs::CapturedLogs;
use wxauth_tests::runtime::LambdaFunction;
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

/// An operator debugging an incident sets TRACE. Every function, as the release
/// binary under the Lambda Runtime API, at TRACE (through either variable, in
/// either log format), through every route that handles a secret: no line
/// carries the session_key, the appsecret, WeChat's access token, a session
/// token, a login or phone code, a phone number, a full openid or the AWS
/// security token. Below INFO only our own crates write (lambda_runtime would
/// log the raw event, the AWS SDK request and response bodies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_at_trace_writes_no_secret() {
    let world = World::new().await;
    let security_token = wxauth_tests::unique("aws-security-token");
    for (variable, level, format) in [
        ("AWS_LAMBDA_LOG_LEVEL", "TRACE", "TEXT"),
        ("RUST_LOG", "trace", "JSON"),
    ] {
        let mut env = world.function_env();
        env.push((variable, level.into()));
        env.push(("AWS_LAMBDA_LOG_FORMAT", format.into()));
        env.push(("AWS_SESSION_TOKEN", security_token.clone()));
        let mut login = LambdaFunction::start("login", &env).await;
        let mut phone = LambdaFunction::start("decrypt-phone", &env).await;
        let mut check = LambdaFunction::start("check-session", &env).await;
        let mut authorizer = LambdaFunction::start("authorizer", &env).await;

        let (code, issued) = world.wechat.issue_code();
        let (status, _, body) = login.call(login_event(&code).build()).await;
        assert_eq!(status, 200, "{body}");
        let token = body["token"].as_str().unwrap().to_owned();
        let bearer = |event: HttpEvent| event.bearer(&token).build();

        let phone_code = world.wechat.issue_phone_code(&issued.openid, "13700137000");
        let encrypted = encrypt_for(&issued, &phone_plaintext(APPID, "13600136000"));
        let raw = r#"{"nickName":"trace"}"#;
        let signed = json!({"rawData": raw, "signature": sign(raw, &issued.session_key)});
        for (is_check, event, expected) in [
            (true, bearer(HttpEvent::new("GET", "/session")), 200),
            (
                true,
                bearer(HttpEvent::new("GET", "/session").query("verify=wechat")),
                200,
            ),
            (
                true,
                bearer(HttpEvent::new("POST", "/session").json(&signed)),
                200,
            ),
            (
                false,
                bearer(HttpEvent::new("POST", "/phone").json(&encrypted)),
                200,
            ),
            (
                false,
                bearer(HttpEvent::new("POST", "/phone").json(&json!({"code": phone_code}))),
                200,
            ),
            // A decrypt failure: our own DEBUG line, proof that TRACE is in force.
            (
                false,
                bearer(HttpEvent::new("POST", "/phone").json(
                    &json!({"encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": encrypted["iv"]}),
                )),
                422,
            ),
        ] {
            let function = if is_check { &mut check } else { &mut phone };
            let (status, _, body) = function.call(event).await;
            assert_eq!(status, expected, "{body}");
        }
        let decision = authorizer
            .invoke(authorizer_event(Some(&format!("Bearer {token}"))))
            .await;
        assert!(
            matches!(&decision, wxauth_tests::runtime::Outcome::Response(answer) if answer["isAuthorized"] == true),
            "{decision:?}"
        );
        // The account routes: the bound phone, logout, then 注销 from a new login.
        let (status, _, account) = check.call(bearer(HttpEvent::new("GET", "/account"))).await;
        assert_eq!(
            (status, account["purePhoneNumber"].as_str()),
            (200, Some("13700137000"))
        );
        let (status, _, _) = check
            .call(bearer(HttpEvent::new("DELETE", "/session")))
            .await;
        assert_eq!(status, 204);
        let (second_code, _) = world.wechat.issue_code_for(&issued.openid, None);
        let (status, _, body) = login.call(login_event(&second_code).build()).await;
        assert_eq!(status, 200, "{body}");
        let second_token = body["token"].as_str().unwrap().to_owned();
        let (status, _, _) = check
            .call(
                HttpEvent::new("DELETE", "/account")
                    .bearer(&second_token)
                    .build(),
            )
            .await;
        assert_eq!(status, 204);
        let access_token = world.wechat.current_token();

        for function in [&mut login, &mut phone, &mut check, &mut authorizer] {
            function.stop().await;
        }
        let phone_logs = phone.logs.text();
        assert!(
            phone_logs.contains("decrypt failed"),
            "{variable}: TRACE not in force:\n{phone_logs}"
        );
        let secrets = [
            ("session_key", issued.session_key.as_str()),
            ("appsecret", world.appsecret.as_str()),
            ("access token", access_token.as_str()),
            ("session token", token.as_str()),
            ("second session token", second_token.as_str()),
            ("login code", code.as_str()),
            ("second login code", second_code.as_str()),
            ("phone code", phone_code.as_str()),
            ("phone number", "13700137000"),
            ("phone number", "13600136000"),
            ("openid", issued.openid.as_str()),
            ("AWS security token", security_token.as_str()),
        ];
        for (name, function) in [
            ("login", &login),
            ("decrypt-phone", &phone),
            ("check-session", &check),
            ("authorizer", &authorizer),
        ] {
            let logs = function.logs.text();
            assert!(!logs.is_empty(), "{name} wrote nothing");
            assert_no_secret(
                &format!("{name} at TRACE ({variable}, {format})"),
                &logs,
                &secrets,
            );
        }
    }
}

/// Tokens that travel, at TRACE: the rotation function generating and
/// publishing a signing key, login signing JWTs and rotating refresh tokens,
/// and check-session and the authorizer checking a JWT. No line carries the
/// private key, a JWT, a refresh token, the session_key or the openid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_and_refresh_tokens_at_trace_write_no_secret() {
    let world = World::new().await;
    let arn = world
        .standins
        .create_secret(wxauth_tests::rotation::UNROTATED_SECRET)
        .await;
    let mut env = world.function_env();
    env.push(("AWS_LAMBDA_LOG_LEVEL", "TRACE".into()));
    env.push(("SIGNING_KEY_SECRET_ID", arn.clone()));
    env.push(("ISSUER", "https://auth.wxauth.test".into()));

    let mut rotation = LambdaFunction::start("rotate-signing-key", &env).await;
    let version = "44444444-aaaa-4000-8000-000000000001";
    wxauth_tests::rotation::run_steps(&mut rotation, &arn, version, 1).await;
    let key: serde_json::Value = serde_json::from_str(
        world
            .standins
            .secrets_client()
            .await
            .get_secret_value()
            .secret_id(&arn)
            .version_id(version)
            .send()
            .await
            .expect("the rotated key")
            .secret_string()
            .unwrap_or_default(),
    )
    .expect("key JSON");
    // 40 characters from the middle of the PEM body: the key in a log, whole
    // or wrapped differently, would carry them.
    let body: String = key["privateKey"]
        .as_str()
        .unwrap_or_else(|| panic!("privateKey in {key}"))
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    assert!(body.len() > 1000, "an RSA-2048 PEM body");
    let pem_line = body[body.len() / 2..body.len() / 2 + 40].to_owned();

    let mut login = LambdaFunction::start("login", &env).await;
    let mut check = LambdaFunction::start("check-session", &env).await;
    let mut authorizer = LambdaFunction::start("authorizer", &env).await;
    let (code, issued) = world.wechat.issue_code();
    let (status, _, first) = login.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "{first}");
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let (jwt, refresh) = (text(&first, "token"), text(&first, "refreshToken"));
    assert_eq!(jwt.matches('.').count(), 2, "JWT mode: {jwt}");
    let (status, _, renewed) = login
        .call(
            HttpEvent::new("POST", "/refresh")
                .json(&json!({"refreshToken": refresh}))
                .build(),
        )
        .await;
    assert_eq!(status, 200, "{renewed}");
    let (renewed_jwt, next_refresh) = (text(&renewed, "token"), text(&renewed, "refreshToken"));
    let (status, _, _) = check
        .call(
            HttpEvent::new("GET", "/session")
                .bearer(&renewed_jwt)
                .build(),
        )
        .await;
    assert_eq!(status, 200);
    // A forged JWT: refused, and our own DEBUG line says so (TRACE in force).
    let forged = format!("{}x", &renewed_jwt[..renewed_jwt.len() - 1]);
    let (status, _, _) = check
        .call(HttpEvent::new("GET", "/session").bearer(&forged).build())
        .await;
    assert_eq!(status, 401);
    assert!(matches!(
        authorizer
            .invoke(authorizer_event(Some(&format!("Bearer {renewed_jwt}"))))
            .await,
        wxauth_tests::runtime::Outcome::Response(answer) if answer["isAuthorized"] == true
    ));

    for function in [&mut rotation, &mut login, &mut check, &mut authorizer] {
        function.stop().await;
    }
    assert!(
        check.logs.text().contains("JWT refused"),
        "TRACE not in force:\n{}",
        check.logs.text()
    );
    let secrets = [
        ("private key", pem_line.as_str()),
        ("JWT", jwt.as_str()),
        ("refreshed JWT", renewed_jwt.as_str()),
        ("forged JWT", forged.as_str()),
        ("refresh token", refresh.as_str()),
        ("next refresh token", next_refresh.as_str()),
        ("session_key", issued.session_key.as_str()),
        ("appsecret", world.appsecret.as_str()),
        ("openid", issued.openid.as_str()),
    ];
    for (name, function) in [
        ("rotate-signing-key", &rotation),
        ("login", &login),
        ("check-session", &check),
        ("authorizer", &authorizer),
    ] {
        assert_no_secret(&format!("{name} at TRACE"), &function.logs.text(), &secrets);
    }
}

/// Fails if `logs` hold any of `secrets` (what, value), naming `whose` logs.
fn assert_no_secret(whose: &str, logs: &str, secrets: &[(&str, &str)]) {
    for (what, secret) in secrets {
        assert!(!logs.contains(secret), "{whose} logged the {what}:\n{logs}");
    }
}
