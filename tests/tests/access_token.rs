//! The extensions that need WeChat's access token: phone number by code,
//! `GET /session?verify=wechat`, and the token itself shared through the
//! session table by many containers. DynamoDB Local, moto, and a fake WeChat
//! over HTTP that counts its stable_token calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use tokio::task::JoinSet;
use wxauth::aws::ACCESS_TOKEN_PREFIX;
use wxauth::domain::time::epoch_seconds;
use wxauth::handlers::DecryptPhone;
use wxauth::ports::token_cache::{TokenCache, utc_day};
use wxauth::wechat::access_token::FORCED_REFRESHES_PER_DAY;
use wxauth_tests::events::HttpEvent;
use wxauth_tests::invoke::{call, expect_error, logged_in, login_event};
use wxauth_tests::logs::{has_metric, metric_records};
use wxauth_tests::runtime::LambdaFunction;
use wxauth_tests::world::{APPID, World};

fn phone_by_code(token: &str, code: &str) -> HttpEvent {
    HttpEvent::new("POST", "/phone")
        .bearer(token)
        .json(&json!({ "code": code }))
}

fn verify(token: &str) -> HttpEvent {
    HttpEvent::new("GET", "/session")
        .bearer(token)
        .query("verify=wechat")
}

#[tokio::test]
async fn phone_by_code_answers_the_phone_of_the_sessions_user() {
    let world = World::new().await;
    let (login, phone) = (world.login().await, world.phone().await);
    let (token, issued) = logged_in(&world, &login).await;
    let code = world.wechat.issue_phone_code(&issued.openid, "13800138000");

    let answer = call(&phone, phone_by_code(&token, &code)).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(
        answer.body,
        json!({"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86"})
    );
    // The code is single-use, and a code another user received is refused.
    // The advice is the phone path's own: a new code from the button, not
    // wx.login (the session is fine).
    let spent = expect_error(&phone, phone_by_code(&token, &code), 401, "invalid_code").await;
    let advice = spent.body["message"].as_str().unwrap_or_default();
    assert!(
        advice.contains("getPhoneNumber") && !advice.contains("Call wx.login"),
        "{advice}"
    );
    let someone_else = world.wechat.issue_phone_code("oSOMEONEELSE", "13900139000");
    expect_error(
        &phone,
        phone_by_code(&token, &someone_else),
        401,
        "invalid_code",
    )
    .await;

    // The token is in the table under its own prefix, renewed 300 s early.
    let item = world
        .item(&format!("{ACCESS_TOKEN_PREFIX}{APPID}"))
        .await
        .expect("shared token item");
    assert_eq!(
        item["accessToken"],
        AttributeValue::S(world.wechat.current_token())
    );
    let expires: i64 = item["expiresAt"].as_n().unwrap().parse().unwrap();
    assert!((expires - epoch_seconds() - 6900).abs() <= 5, "{expires}");
    assert_eq!(world.wechat.stable_token_calls(), (1, 0));
}

#[tokio::test]
async fn phone_by_code_maps_wechat_errcodes() {
    let world = World::new().await;
    let (login, phone) = (world.login().await, world.phone().await);
    let (token, _) = logged_in(&world, &login).await;
    let answer = expect_error(
        &phone,
        phone_by_code(&token, "errcode-45011"),
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(answer.headers["retry-after"], "60");
    expect_error(
        &phone,
        phone_by_code(&token, "errcode-40029"),
        401,
        "invalid_code",
    )
    .await;
    let answer = expect_error(
        &phone,
        phone_by_code(&token, "errcode-40013"),
        502,
        "wechat_error",
    )
    .await;
    assert!(answer.raw.contains("40013"));
    expect_error(&phone, phone_by_code(&token, "html"), 502, "wechat_error").await;
    world.wechat.busy_next(10);
    expect_error(
        &phone,
        phone_by_code(&token, "any"),
        503,
        "upstream_unavailable",
    )
    .await;
    // The token is checked before the body, and the body before WeChat.
    let before = world.wechat.user_api_calls();
    expect_error(
        &phone,
        phone_by_code("not-a-token", "c"),
        401,
        "unauthorized",
    )
    .await;
    expect_error(
        &phone,
        phone_by_code(&token, "has space"),
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(world.wechat.user_api_calls(), before);
}

#[tokio::test]
async fn verify_wechat_ends_a_session_whose_key_wechat_replaced() {
    let world = World::new().await;
    // Two sessions of one user side by side (single session off), so the
    // older one's session_key is the one WeChat replaced.
    let login = world.login().await.with_single_session(false);
    let check = world.check().await;
    let (first_code, first) = world.wechat.issue_code_for("oVERIFY000000000001", None);
    let first_token = call(&login, login_event(&first_code)).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = call(&check, verify(&first_token)).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(answer.body["openid"], first.openid);

    let (second_code, _) = world.wechat.issue_code_for("oVERIFY000000000001", None);
    let second_token = call(&login, login_event(&second_code)).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Our own check still says yes; WeChat's says the key is gone.
    assert_eq!(
        call(
            &check,
            HttpEvent::new("GET", "/session").bearer(&first_token)
        )
        .await
        .status,
        200
    );
    expect_error(&check, verify(&first_token), 401, "session_key_invalid").await;
    expect_error(
        &check,
        HttpEvent::new("GET", "/session").bearer(&first_token),
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(call(&check, verify(&second_token)).await.status, 200);
    assert_eq!(world.wechat.user_api_calls().1, 3);
    assert_eq!(world.wechat.stable_token_calls(), (1, 0));
    expect_error(
        &check,
        HttpEvent::new("GET", "/session")
            .bearer(&second_token)
            .query("verify=maybe"),
        400,
        "invalid_request",
    )
    .await;
}

const CONTAINERS: usize = 16;

/// `CONTAINERS` decrypt-phone processes asking for a phone by code at once;
/// returns the statuses.
async fn all_at_once(
    world: &World,
    functions: Vec<LambdaFunction>,
    token: &str,
    openid: &str,
) -> (Vec<LambdaFunction>, Vec<u16>) {
    let mut tasks = JoinSet::new();
    for (i, mut function) in functions.into_iter().enumerate() {
        let code = world.wechat.issue_phone_code(openid, "13800138000");
        let event = phone_by_code(token, &code).build();
        tasks.spawn(async move {
            let (status, _, body) = function.call(event).await;
            (i, function, status, body)
        });
    }
    let mut answers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        answers.push(joined.expect("container task"));
    }
    answers.sort_by_key(|(i, ..)| *i);
    let statuses = answers.iter().map(|(_, _, status, _)| *status).collect();
    for (_, function, status, body) in &answers {
        assert!(
            [200, 503].contains(status),
            "{status} {body}\n{}",
            function.logs.text()
        );
    }
    (answers.into_iter().map(|(_, f, ..)| f).collect(), statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_cold_containers_share_one_token_and_force_at_most_once_per_30s() {
    let world = World::new().await;
    let login = world.login().await;
    let (token, issued) = logged_in(&world, &login).await;
    let env = world.function_env();
    let mut starting = JoinSet::new();
    for _ in 0..CONTAINERS {
        let env = env.clone();
        starting.spawn(async move { LambdaFunction::start("decrypt-phone", &env).await });
    }
    let mut functions = Vec::new();
    while let Some(started) = starting.join_next().await {
        functions.push(started.expect("start"));
    }

    // Cold, with no token anywhere: one container fetches while the rest wait
    // for it (a slow machine may let a waiter fetch too, in normal mode).
    let (functions, statuses) = all_at_once(&world, functions, &token, &issued.openid).await;
    assert_eq!(statuses, vec![200; CONTAINERS]);
    let (normal, forced) = world.wechat.stable_token_calls();
    assert!((1..=CONTAINERS as u32).contains(&normal), "{normal}");
    assert_eq!(forced, 0);

    // WeChat stops honouring the token and hands it back in normal mode: every
    // container meets 40001 at once, and exactly one may force a refresh. The
    // others pick its token up (or, on a slow machine, answer 503 to retry).
    world.wechat.revoke_token();
    let (functions, statuses) = all_at_once(&world, functions, &token, &issued.openid).await;
    assert!(statuses.contains(&200), "{statuses:?}");
    let (_, forced) = world.wechat.stable_token_calls();
    assert_eq!(forced, 1);

    // Again within 30 s: nobody may force; the answers are 503 with Retry-After.
    world.wechat.revoke_token();
    let (mut functions, statuses) = all_at_once(&world, functions, &token, &issued.openid).await;
    assert_eq!(statuses, vec![503; CONTAINERS]);
    assert_eq!(world.wechat.stable_token_calls().1, 1);
    let (status, headers, _) = functions[0]
        .call(phone_by_code(&token, "any").build())
        .await;
    assert_eq!((status, headers["retry-after"].as_str()), (503, Some("2")));
    assert_eq!(world.wechat.stable_token_calls().1, 1);

    // The metrics an operator alarms on, as CloudWatch reads them from the
    // containers' output: exactly one forced fetch in all, and refusals.
    let mut records = Vec::new();
    for function in &mut functions {
        function.stop().await;
        records.extend(metric_records(&function.logs.text()));
    }
    let forced: usize = records
        .iter()
        .filter(|r| r["AccessTokenFetches"].is_number() && r["Mode"] == "forced")
        .count();
    assert_eq!(forced, 1, "forced fetches counted");
    assert!(has_metric(
        &records,
        "AccessTokenFetches",
        &[("Mode", "normal")]
    ));
    assert!(has_metric(
        &records,
        "ForcedRefreshRefused",
        &[("Function", "decrypt-phone")]
    ));
    println!(
        "{CONTAINERS} cold containers: stable_token calls (normal, forced) = {:?}",
        world.wechat.stable_token_calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_session_binary_verifies_with_wechat() {
    let world = World::new().await;
    let env = world.function_env();
    let mut login = LambdaFunction::start("login", &env).await;
    let mut check = LambdaFunction::start("check-session", &env).await;
    let (code, issued) = world.wechat.issue_code();
    let (_, _, body) = login.call(login_event(&code).build()).await;
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, _, body) = check.call(verify(&token).build()).await;
    assert_eq!(status, 200, "{body}\n{}", check.logs.text());
    assert_eq!(world.wechat.user_api_calls().1, 1);
    // The access token, the session_key, the session token and the appsecret
    // stay out of the logs.
    let logs = check.logs.text();
    for secret in [
        world.wechat.current_token(),
        issued.session_key,
        token,
        world.appsecret.clone(),
    ] {
        assert!(!logs.contains(&secret), "a secret reached the log");
    }
}

#[tokio::test]
async fn a_rotated_appsecret_is_fetched_again_for_the_token() {
    let world = World::new().await;
    let (login, phone) = (world.login().await, world.phone().await);
    let (token, issued) = logged_in(&world, &login).await;
    let code = world.wechat.issue_phone_code(&issued.openid, "13800138000");
    assert_eq!(call(&phone, phone_by_code(&token, &code)).await.status, 200);

    // The operator rotates the appsecret, and WeChat stops honouring the token:
    // the normal-mode fetch with the cached secret is refused (40125), the
    // secret is read again, WeChat hands back the refused token in normal mode,
    // and the forced refresh goes through with the new secret.
    let rotated = wxauth_tests::unique("rotated");
    world
        .standins
        .rotate_secret(&world.secret_arn, &rotated)
        .await;
    world.wechat.rotate_secret(&rotated);
    world.wechat.revoke_token();
    let code = world.wechat.issue_phone_code(&issued.openid, "13800138000");
    let answer = call(&phone, phone_by_code(&token, &code)).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(world.wechat.stable_token_calls(), (2, 1));
}

#[tokio::test]
async fn the_shared_token_is_renewed_before_wechat_expires_it() {
    let world = World::new().await;
    let clock = Arc::new(AtomicI64::new(epoch_seconds()));
    let now = Arc::clone(&clock);
    let tokens = world
        .access_tokens()
        .await
        .with_clock(Arc::new(move || now.load(Ordering::SeqCst)));
    let login = world.login().await;
    let phone = DecryptPhone::new(world.store().await, world.parsed_apps()).with_wechat(tokens);
    let (token, issued) = logged_in(&world, &login).await;
    let ask = || {
        let code = world.wechat.issue_phone_code(&issued.openid, "13800138000");
        call(&phone, phone_by_code(&token, &code))
    };
    // A token WeChat says lives 2 s is kept for half of that.
    world.wechat.set_token_lifetime(2);
    assert_eq!(ask().await.status, 200);
    let started = clock.load(Ordering::SeqCst);
    let shared_until = |item: Option<std::collections::HashMap<String, AttributeValue>>| {
        item.and_then(|item| item["expiresAt"].as_n().ok()?.parse::<i64>().ok())
    };
    let pk = format!("{ACCESS_TOKEN_PREFIX}{APPID}");
    let first = shared_until(world.item(&pk).await).expect("shared token");
    assert_eq!(first, started + 1);
    assert_eq!(world.wechat.stable_token_calls(), (1, 0));

    // Two seconds later (on the keeper's clock: nobody waits for them).
    clock.fetch_add(2, Ordering::SeqCst);
    assert_eq!(ask().await.status, 200);
    assert_eq!(world.wechat.stable_token_calls(), (2, 0));
    let renewed = shared_until(world.item(&pk).await).expect("renewed token");
    assert!(renewed > first, "{renewed} after {first}");
}

/// Another system replaced the token: WeChat refuses ours, and normal mode
/// already hands out the new one. Every container uses it; nobody forces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_replaced_elsewhere_costs_no_forced_refresh() {
    let world = World::new().await;
    let login = world.login().await;
    let (token, issued) = logged_in(&world, &login).await;
    let mut functions = Vec::new();
    for _ in 0..4 {
        functions.push(LambdaFunction::start("decrypt-phone", &world.function_env()).await);
    }
    let (functions, statuses) = all_at_once(&world, functions, &token, &issued.openid).await;
    assert_eq!(statuses, vec![200; 4]);
    world.wechat.replace_token_elsewhere();
    let (_, statuses) = all_at_once(&world, functions, &token, &issued.openid).await;
    assert_eq!(statuses, vec![200; 4]);
    assert_eq!(world.wechat.stable_token_calls().1, 0);
}

/// Today's ten forced refreshes are spent (by any container): a refused token
/// WeChat keeps handing back is answered 503 with Retry-After, and no 11th
/// forced refresh reaches WeChat.
#[tokio::test]
async fn no_eleventh_forced_refresh_in_a_utc_day() {
    let world = World::new().await;
    let (login, phone) = (world.login().await, world.phone().await);
    let (token, issued) = logged_in(&world, &login).await;
    let code = world.wechat.issue_phone_code(&issued.openid, "13800138000");
    assert_eq!(call(&phone, phone_by_code(&token, &code)).await.status, 200);
    let now = epoch_seconds();
    world
        .dynamodb
        .put_item()
        .table_name(&world.table)
        .item(
            "pk",
            AttributeValue::S(format!("{ACCESS_TOKEN_PREFIX}{APPID}#forced")),
        )
        .item("day", AttributeValue::N(utc_day(now).to_string()))
        .item(
            "forcedToday",
            AttributeValue::N(FORCED_REFRESHES_PER_DAY.to_string()),
        )
        .item("windowEnds", AttributeValue::N((now - 60).to_string()))
        .item("expiresAt", AttributeValue::N((now + 86_400).to_string()))
        .send()
        .await
        .unwrap();
    world.wechat.revoke_token();
    let code = world.wechat.issue_phone_code(&issued.openid, "13800138000");
    let answer = call(&phone, phone_by_code(&token, &code)).await;
    assert_eq!(answer.status, 503, "{}", answer.raw);
    assert_eq!(answer.headers["retry-after"], "2");
    assert_eq!(world.wechat.stable_token_calls().1, 0);
}

/// The forced-refresh counter in DynamoDB Local, on the keeper's own times:
/// one per 30 s, ten per UTC day, a fresh ten the next day.
#[tokio::test]
async fn the_forced_refresh_counter_holds_in_the_table() {
    let world = World::new().await;
    let store = world.store().await;
    let day = utc_day(epoch_seconds()) * 86_400;
    let claim = |now: i64| store.try_claim_forced_refresh(APPID, now, 30, 10);
    for i in 0..10 {
        assert!(claim(day + i * 31).await.unwrap(), "claim {i}");
        assert!(
            !claim(day + i * 31 + 29).await.unwrap(),
            "within 30 s of claim {i}"
        );
    }
    assert!(!claim(day + 10 * 31).await.unwrap(), "an 11th the same day");
    assert!(!claim(day + 86_399).await.unwrap());
    assert!(claim(day + 86_400).await.unwrap());
    assert!(!claim(day + 86_400 + 1).await.unwrap());
    assert!(claim(day + 86_400 + 31).await.unwrap());
}
