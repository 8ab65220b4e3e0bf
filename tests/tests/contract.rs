//! The contract (../shared/spec/API.md) against the real stand-ins: DynamoDB Local,
//! moto's Secrets Manager and a fake WeChat over HTTP. Handlers run in-process
//! behind the same API Gateway event adapter the functions use.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use sha2::{Digest, Sha256};
use wxauth::aws::{DynamoSessionStore, SecretsManagerSource};
use wxauth::handlers::CheckSession;
use wxauth::runtime::deadline::ANSWER_WITHIN;
use wxauth_tests::events::HttpEvent;
use wxauth_tests::invoke::{
    assert_error, call, call_with_deadline, expect_error, logged_in, login_event,
};
use wxauth_tests::standins::{StandIns, closed_endpoint};
use wxauth_tests::world::{APPID, World, encrypt_for, login_with, phone_plaintext, sign};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn whole_flow_on_dynamodb_local_moto_and_fake_wechat() {
    let world = World::new().await;
    let (login, phone, check) = (
        world.login().await,
        world.phone().await,
        world.check().await,
    );

    let (code, issued) = world
        .wechat
        .issue_code_for("oUSER0000000000000000000001", Some("uUNION1"));
    let answer = call(&login, login_event(&code)).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(answer.body["openid"], "oUSER0000000000000000000001");
    assert_eq!(answer.body["unionid"], "uUNION1");
    assert_eq!(answer.body["expiresIn"], 600);
    assert_eq!(answer.headers["content-type"], "application/json");
    let token = answer.body["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43);

    // The item is keyed by SHA-256 of the token and never holds the token itself.
    let pk = hex::encode(Sha256::digest(token.as_bytes()));
    let item = world.item(&pk).await.expect("session item");
    assert_eq!(item["openid"], AttributeValue::S(issued.openid.clone()));
    assert_eq!(
        item["sessionKey"],
        AttributeValue::S(issued.session_key.clone())
    );
    assert_eq!(item["unionid"], AttributeValue::S("uUNION1".into()));
    let created: i64 = item["createdAt"].as_n().unwrap().parse().unwrap();
    let expires: i64 = item["expiresAt"].as_n().unwrap().parse().unwrap();
    assert_eq!(expires - created, 600);
    assert!(!format!("{item:?}").contains(&token));

    let answer = call(&check, HttpEvent::new("GET", "/session").bearer(&token)).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(answer.body["valid"], true);
    assert_eq!(answer.body["openid"], issued.openid);
    assert_eq!(answer.body["unionid"], "uUNION1");
    assert!((598..=600).contains(&answer.body["expiresIn"].as_i64().unwrap()));

    let payload = encrypt_for(&issued, &phone_plaintext(APPID, "13580006666"));
    let answer = call(
        &phone,
        HttpEvent::new("POST", "/phone")
            .bearer(&token)
            .json(&payload),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(
        answer.body,
        json!({"phoneNumber": "13580006666", "purePhoneNumber": "13580006666", "countryCode": "86"})
    );

    let raw = r#"{"nickName":"Band","gender":1,"language":"zh_CN"}"#;
    let signed = json!({"rawData": raw, "signature": sign(raw, &issued.session_key)});
    let answer = call(
        &check,
        HttpEvent::new("POST", "/session")
            .bearer(&token)
            .json(&signed),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(answer.body["userInfo"]["nickName"], "Band");
    assert_eq!(answer.body["openid"], issued.openid);
}

#[tokio::test]
async fn bodies_may_arrive_base64_encoded_with_any_content_type() {
    let world = World::new().await;
    let login = world.login().await;
    let (code, _) = world.wechat.issue_code();
    let event = HttpEvent::new("POST", "/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .raw_body(json!({"code": code}).to_string())
        .base64_body();
    assert_eq!(call(&login, event).await.status, 200);
}

#[tokio::test]
async fn codes_are_single_use_and_unknown_codes_refused() {
    let world = World::new().await;
    let login = world.login().await;
    let (code, _) = world.wechat.issue_code();
    assert_eq!(call(&login, login_event(&code)).await.status, 200);
    expect_error(&login, login_event(&code), 401, "invalid_code").await;
    expect_error(&login, login_event("never-issued"), 401, "invalid_code").await;
    // Text/plain errcode, as WeChat sends it.
    expect_error(&login, login_event("text-40029"), 401, "invalid_code").await;
}

#[tokio::test]
async fn wechat_failures_map_to_the_error_table() {
    let world = World::new().await;
    let login = world.login().await;
    for (code, status, error) in [
        ("errcode-40226", 403, "login_blocked"),
        ("errcode-45011", 429, "rate_limited"),
        ("errcode-40163", 401, "invalid_code"),
        ("errcode-40013", 502, "wechat_error"),
        ("html", 502, "wechat_error"),
        ("notjson", 502, "wechat_error"),
        ("noopenid", 502, "wechat_error"),
    ] {
        let before = world.wechat.calls();
        let answer = call(&login, login_event(code)).await;
        assert_error(&answer, status, error);
        assert_eq!(
            world.wechat.calls() - before,
            1,
            "{code} must not be retried"
        );
        if status == 429 {
            assert_eq!(answer.headers["retry-after"], "60");
        }
    }
}

#[tokio::test]
async fn busy_wechat_is_retried_with_backoff() {
    let world = World::new().await;
    let login = world.login().await;
    world.wechat.busy_next(2);
    let (code, _) = world.wechat.issue_code();
    let before = world.wechat.calls();
    assert_eq!(call(&login, login_event(&code)).await.status, 200);
    assert_eq!(world.wechat.calls() - before, 3);

    let before = world.wechat.calls();
    let answer = call(&login, login_event("errcode--1")).await;
    assert_error(&answer, 503, "upstream_unavailable");
    assert_eq!(answer.headers["retry-after"], "2");
    assert_eq!(world.wechat.calls() - before, 3, "bounded: three attempts");
    eprintln!("WeChat -1 forever: 503 after 3 attempts");
}

#[tokio::test]
async fn slow_wechat_gets_503_before_the_invocation_deadline() {
    let world = World::new().await;
    let login = world.login().await;
    let started = Instant::now();
    let answer = call_with_deadline(&login, login_event("slow"), Some(now_ms() + 2_000)).await;
    assert_error(&answer, 503, "upstream_unavailable");
    // The fake answers after 30 s; the invocation's 2-s deadline cut the call.
    // A bound far from both, so a slow machine cannot fail it.
    assert!(started.elapsed() < ANSWER_WITHIN, "{:?}", started.elapsed());
}

#[tokio::test]
async fn unreachable_wechat_is_503() {
    let world = World::new().await;
    let login = login_with(
        world.store().await,
        &closed_endpoint().await,
        world.secrets().await,
        world.parsed_apps(),
    );
    expect_error(&login, login_event("anycode"), 503, "upstream_unavailable").await;
}

#[tokio::test]
async fn request_checks_run_in_contract_order() {
    let world = World::new().await;
    let (login, phone, check) = (
        world.login().await,
        world.phone().await,
        world.check().await,
    );
    let (token, _) = logged_in(&world, &login).await;
    let huge = "x".repeat(16 * 1024 + 1);

    // 413 before 405 before 401 before 400.
    expect_error(
        &check,
        HttpEvent::new("PUT", "/session").raw_body(huge.clone()),
        413,
        "payload_too_large",
    )
    .await;
    expect_error(
        &login,
        HttpEvent::new("GET", "/login").raw_body(huge.clone()),
        413,
        "payload_too_large",
    )
    .await;
    expect_error(
        &phone,
        HttpEvent::new("POST", "/phone")
            .raw_body(huge.clone())
            .base64_body(),
        413,
        "payload_too_large",
    )
    .await;
    let answer = call(
        &check,
        HttpEvent::new("PUT", "/session").raw_body("garbage"),
    )
    .await;
    assert_error(&answer, 405, "method_not_allowed");
    assert_eq!(answer.headers["allow"], "GET, POST, DELETE");
    expect_error(
        &login,
        HttpEvent::new("GET", "/login"),
        405,
        "method_not_allowed",
    )
    .await;
    expect_error(
        &phone,
        HttpEvent::new("GET", "/phone").bearer(&token),
        405,
        "method_not_allowed",
    )
    .await;
    expect_error(
        &phone,
        HttpEvent::new("POST", "/phone").raw_body("garbage"),
        401,
        "unauthorized",
    )
    .await;
    expect_error(
        &check,
        HttpEvent::new("POST", "/session").raw_body("garbage"),
        401,
        "unauthorized",
    )
    .await;
    expect_error(
        &phone,
        HttpEvent::new("POST", "/phone")
            .bearer(&token)
            .raw_body("garbage"),
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &check,
        HttpEvent::new("POST", "/session")
            .bearer(&token)
            .raw_body("garbage"),
        400,
        "invalid_request",
    )
    .await;
    // A form-encoded body is told apart from other bad JSON, on every route
    // with a body, and only after the token check.
    for (handler_body, label) in [
        ("code=0a1b2c3d", None),
        ("{not json", Some("application/x-www-form-urlencoded")),
    ] {
        let form = |event: HttpEvent| match label {
            Some(value) => event.header("content-type", value).raw_body(handler_body),
            None => event.raw_body(handler_body),
        };
        for answer in [
            expect_error(
                &login,
                form(HttpEvent::new("POST", "/login")),
                400,
                "invalid_request",
            )
            .await,
            expect_error(
                &phone,
                form(HttpEvent::new("POST", "/phone").bearer(&token)),
                400,
                "invalid_request",
            )
            .await,
            expect_error(
                &check,
                form(HttpEvent::new("POST", "/session").bearer(&token)),
                400,
                "invalid_request",
            )
            .await,
        ] {
            assert!(
                answer.body["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("form-encoded"),
                "{}",
                answer.raw
            );
        }
    }
    expect_error(
        &phone,
        HttpEvent::new("POST", "/phone").raw_body("code=x"),
        401,
        "unauthorized",
    )
    .await;

    // Exactly 16 KiB is allowed through to field checks.
    let padded = format!(
        "{{\"code\":\"abc\",\"pad\":\"{}\"}}",
        "x".repeat(16 * 1024 - 23)
    );
    assert_eq!(padded.len(), 16 * 1024);
    expect_error(
        &login,
        HttpEvent::new("POST", "/login").raw_body(padded),
        401,
        "invalid_code",
    )
    .await;
}

#[tokio::test]
async fn malformed_fields_are_400() {
    let world = World::new().await;
    let (login, phone, check) = (
        world.login().await,
        world.phone().await,
        world.check().await,
    );
    let (token, issued) = logged_in(&world, &login).await;
    let good = encrypt_for(&issued, &phone_plaintext(APPID, "13580006666"));
    for body in [
        json!({}),
        json!({"code": ""}),
        json!({"code": 5}),
        json!({"code": "a b"}),
        json!({"code": "x".repeat(129)}),
    ] {
        expect_error(
            &login,
            HttpEvent::new("POST", "/login").json(&body),
            400,
            "invalid_request",
        )
        .await;
    }
    for body in [
        json!({"iv": good["iv"]}),
        json!({"encryptedData": good["encryptedData"]}),
        json!({"encryptedData": "%%%", "iv": good["iv"]}),
        json!({"encryptedData": good["encryptedData"], "iv": "AAAA"}),
        json!({"encryptedData": "AAAAAAAAAAAAAAAAAAAA", "iv": good["iv"]}),
        json!({"encryptedData": "A".repeat(8193), "iv": good["iv"]}),
        json!({"encryptedData": good["encryptedData"].as_str().unwrap().replacen('+', " ", 1).replacen('/', " ", 1), "iv": good["iv"]}),
    ] {
        expect_error(
            &phone,
            HttpEvent::new("POST", "/phone").bearer(&token).json(&body),
            400,
            "invalid_request",
        )
        .await;
    }
    for body in [
        json!({"rawData": "{}"}),
        json!({"rawData": "{}", "signature": "abc"}),
        json!({"rawData": "{}", "signature": "g".repeat(40)}),
        json!({"rawData": "x".repeat(8193), "signature": "a".repeat(40)}),
    ] {
        expect_error(
            &check,
            HttpEvent::new("POST", "/session")
                .bearer(&token)
                .json(&body),
            400,
            "invalid_request",
        )
        .await;
    }
}

#[tokio::test]
async fn unauthorized_tokens() {
    let world = World::new().await;
    let (login, check) = (world.login().await, world.check().await);
    let (token, _) = logged_in(&world, &login).await;
    for event in [
        HttpEvent::new("GET", "/session"),
        HttpEvent::new("GET", "/session").header("authorization", &format!("Basic {token}")),
        HttpEvent::new("GET", "/session").bearer("short"),
        // Another well-formed token, one character off (the last character of a
        // 256-bit token is one of A, Q, g, w).
        HttpEvent::new("GET", "/session").bearer(&format!(
            "{}{}",
            &token[..42],
            if token.ends_with('A') { 'Q' } else { 'A' }
        )),
        HttpEvent::new("GET", "/session").query(&format!("token={token}")),
    ] {
        expect_error(&check, event, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn expired_item_still_in_the_table_is_refused() {
    let world = World::new().await;
    let (login, check, phone) = (
        world.login().await,
        world.check().await,
        world.phone().await,
    );
    let (token, issued) = logged_in(&world, &login).await;
    let pk = hex::encode(Sha256::digest(token.as_bytes()));
    let past = wxauth::domain::time::epoch_seconds() - 5;
    world
        .dynamodb
        .update_item()
        .table_name(&world.table)
        .key("pk", AttributeValue::S(pk))
        .update_expression("SET expiresAt = :past")
        .expression_attribute_values(":past", AttributeValue::N(past.to_string()))
        .send()
        .await
        .unwrap();
    expect_error(
        &check,
        HttpEvent::new("GET", "/session").bearer(&token),
        401,
        "unauthorized",
    )
    .await;
    let payload = encrypt_for(&issued, &phone_plaintext(APPID, "13580006666"));
    expect_error(
        &phone,
        HttpEvent::new("POST", "/phone")
            .bearer(&token)
            .json(&payload),
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn signature_mismatch_and_decrypt_failures() {
    let world = World::new().await;
    let (login, check, phone) = (
        world.login().await,
        world.check().await,
        world.phone().await,
    );
    let (token, issued) = logged_in(&world, &login).await;
    let (_, other) = world.wechat.issue_code();

    let raw = r#"{"nickName":"Band"}"#;
    let wrong = json!({"rawData": raw, "signature": sign(raw, &other.session_key)});
    expect_error(
        &check,
        HttpEvent::new("POST", "/session")
            .bearer(&token)
            .json(&wrong),
        401,
        "signature_mismatch",
    )
    .await;

    // A later wx.login refreshed the key: the payload was encrypted with another one.
    let mut bodies = Vec::new();
    for payload in [
        encrypt_for(&other, &phone_plaintext(APPID, "13580006666")),
        encrypt_for(
            &issued,
            &phone_plaintext("wx0000000000000000", "13580006666"),
        ),
        encrypt_for(&issued, "not json"),
        encrypt_for(&issued, &json!({"watermark": {"appid": APPID}}).to_string()),
    ] {
        let answer = call(
            &phone,
            HttpEvent::new("POST", "/phone")
                .bearer(&token)
                .json(&payload),
        )
        .await;
        assert_error(&answer, 422, "decrypt_failed");
        bodies.push(answer.raw);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one body for every decrypt failure"
    );
}

#[tokio::test]
async fn session_table_unreachable_is_503() {
    let world = World::new().await;
    let down = StandIns::sdk_config(&closed_endpoint().await).await;
    let store = || DynamoSessionStore::new(&down, world.table.clone());
    let login = login_with(
        store(),
        &world.wechat.base,
        world.secrets().await,
        world.parsed_apps(),
    );
    let (code, _) = world.wechat.issue_code();
    let started = Instant::now();
    let answer = call(&login, login_event(&code)).await;
    assert_error(&answer, 503, "upstream_unavailable");
    assert_eq!(answer.headers["retry-after"], "2");
    let token = wxauth::domain::token::SessionToken::generate().unwrap();
    assert_error(
        &call(
            &CheckSession::new(store()),
            HttpEvent::new("GET", "/session").bearer(token.expose()),
        )
        .await,
        503,
        "upstream_unavailable",
    );
    // The contract's answer budget: the SDK's retries stay within it.
    assert!(started.elapsed() < ANSWER_WITHIN, "{:?}", started.elapsed());
}

#[tokio::test]
async fn secrets_manager_down_breaks_only_login() {
    let world = World::new().await;
    let (token, _) = logged_in(&world, &world.login().await).await;
    let down = StandIns::sdk_config(&closed_endpoint().await).await;
    let login = login_with(
        world.store().await,
        &world.wechat.base,
        SecretsManagerSource::new(
            &down,
            world.secret_arn.clone(),
            wxauth_tests::world::default_app(),
        ),
        world.parsed_apps(),
    );
    let (code, _) = world.wechat.issue_code();
    expect_error(&login, login_event(&code), 503, "upstream_unavailable").await;
    assert_eq!(
        call(
            &world.check().await,
            HttpEvent::new("GET", "/session").bearer(&token)
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn secret_rotation_while_warm() {
    let world = World::new().await;
    let login = world.login().await;
    logged_in(&world, &login).await;

    // The operator rotates: Secrets Manager and WeChat now know only the new secret.
    let rotated = wxauth_tests::unique("rotated");
    world
        .standins
        .rotate_secret(&world.secret_arn, &rotated)
        .await;
    world.wechat.rotate_secret(&rotated);

    let seen_before = world.wechat.secrets_seen().len();
    logged_in(&world, &login).await;
    let seen = world.wechat.secrets_seen()[seen_before..].to_vec();
    assert_eq!(
        seen,
        [world.appsecret.clone(), rotated.clone()],
        "cached secret refused once, then the new one"
    );
    // And the new one stays cached.
    logged_in(&world, &login).await;
    assert_eq!(world.wechat.secrets_seen().last(), Some(&rotated));
}

#[tokio::test]
async fn json_secret_string_is_read() {
    let world = World::new().await;
    world
        .standins
        .rotate_secret(
            &world.secret_arn,
            &json!({"appsecret": world.appsecret}).to_string(),
        )
        .await;
    logged_in(&world, &world.login().await).await;
}

#[tokio::test]
async fn limits_on_nesting_headers_and_fields() {
    let world = World::new().await;
    let (login, check) = (world.login().await, world.check().await);
    let (token, _) = logged_in(&world, &login).await;
    // 8,000 levels of nesting fit in 16 KiB; the parser's depth limit refuses them
    // (a recursive parser without one would overflow the stack).
    let deep = format!("{{\"code\": {}{}}}", "[".repeat(8_000), "]".repeat(8_000));
    assert!(deep.len() <= 16 * 1024);
    expect_error(
        &login,
        HttpEvent::new("POST", "/login").raw_body(deep.clone()),
        400,
        "invalid_request",
    )
    .await;
    let deep_raw = serde_json::json!({"rawData": format!("{}{}", "[".repeat(4_000), "]".repeat(4_000)), "signature": "0".repeat(40)});
    expect_error(
        &check,
        HttpEvent::new("POST", "/session")
            .bearer(&token)
            .json(&deep_raw),
        400,
        "invalid_request",
    )
    .await;
    // A huge Authorization header is a malformed token, not a crash or a table read.
    let huge = format!("Bearer {}", "A".repeat(64 * 1024));
    expect_error(
        &check,
        HttpEvent::new("GET", "/session").header("authorization", &huge),
        401,
        "unauthorized",
    )
    .await;
    // Many headers are fine.
    let mut many = HttpEvent::new("GET", "/session").bearer(&token);
    for i in 0..500 {
        many = many.header(&format!("x-extra-{i}"), "v");
    }
    assert_eq!(call(&check, many).await.status, 200);
    // The code limit is 128 visible ASCII characters, inclusive.
    let longest = "c".repeat(128);
    expect_error(&login, login_event(&longest), 401, "invalid_code").await;
}

#[tokio::test]
async fn logout_deletes_the_session_in_the_table() {
    let world = World::new().await;
    let (login, check) = (world.login().await, world.check().await);
    let (token, _) = logged_in(&world, &login).await;
    let answer = call(&check, HttpEvent::new("DELETE", "/session").bearer(&token)).await;
    assert_eq!(answer.status, 204, "{}", answer.raw);
    let pk = hex::encode(Sha256::digest(token.as_bytes()));
    let item = world.item(&pk).await;
    assert!(item.is_none(), "the item is gone");
    expect_error(
        &check,
        HttpEvent::new("GET", "/session").bearer(&token),
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn open_data_and_watermark_freshness() {
    let world = World::new().await;
    let (login, phone) = (world.login().await, world.phone().await);
    let (token, issued) = logged_in(&world, &login).await;
    let now = wxauth::domain::time::epoch_seconds();
    let share = json!({"openGId": "tGshare01", "watermark": {"appid": APPID, "timestamp": now}})
        .to_string();
    let answer = call(
        &phone,
        HttpEvent::new("POST", "/open-data")
            .bearer(&token)
            .json(&encrypt_for(&issued, &share)),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(answer.body, json!({"openGId": "tGshare01"}));
    let werun = json!({"stepInfoList": [{"timestamp": now - 86_400, "step": 8_000}], "watermark": {"appid": APPID, "timestamp": now}}).to_string();
    let answer = call(
        &phone,
        HttpEvent::new("POST", "/open-data")
            .bearer(&token)
            .json(&encrypt_for(&issued, &werun)),
    )
    .await;
    assert_eq!(answer.body["stepInfoList"][0]["step"], 8_000);

    // Older than WATERMARK_MAX_AGE_SECONDS (300 by default): refused, on both routes.
    let stale = json!({"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86", "watermark": {"appid": APPID, "timestamp": now - 301}}).to_string();
    for path in ["/phone", "/open-data"] {
        let answer = call(
            &phone,
            HttpEvent::new("POST", path)
                .bearer(&token)
                .json(&encrypt_for(&issued, &stale)),
        )
        .await;
        assert_error(&answer, 422, "decrypt_failed");
    }
}
