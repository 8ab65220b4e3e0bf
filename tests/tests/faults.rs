//! Faults of the upstreams, injected where the stand-ins cannot misbehave on
//! their own: DynamoDB stopped mid-run and throttling (through proxies),
//! Secrets Manager down at cold start and while warm, a 10 MB WeChat answer.

use std::time::{Duration, Instant};

use wxauth::aws::{DynamoSessionStore, SecretsManagerSource};
use wxauth::handlers::CheckSession;
use wxauth::runtime::deadline::ANSWER_WITHIN;
use wxauth_tests::events::HttpEvent;
use wxauth_tests::invoke::{assert_error, call, expect_error, logged_in, login_event};
use wxauth_tests::proxy::{CountingProxy, DynamoDbProxy};
use wxauth_tests::runtime::LambdaFunction;
use wxauth_tests::standins::{StandIns, closed_endpoint};
use wxauth_tests::world::{World, login_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_stopped_mid_run_gives_503_in_time_and_recovers() {
    let world = World::new().await;
    let (token, _) = logged_in(&world, &world.login().await).await;
    let dynamodb = CountingProxy::start(&world.standins.dynamodb).await;
    let mut env = world.function_env();
    for (name, value) in env.iter_mut() {
        if *name == "AWS_ENDPOINT_URL_DYNAMODB" {
            *value = dynamodb.endpoint.clone();
        }
    }
    let mut check = LambdaFunction::start("check-session", &env).await;
    let session = || HttpEvent::new("GET", "/session").bearer(&token).build();
    assert_eq!(check.call(session()).await.0, 200);

    dynamodb.set_down(true);
    let started = Instant::now();
    let (status, headers, body) = check.call(session()).await;
    let took = started.elapsed();
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("upstream_unavailable")),
        "{body}"
    );
    assert_eq!(headers["retry-after"], "2");
    assert!(took < ANSWER_WITHIN, "answered in {took:?}");
    assert!(check.is_running(), "the process survives");

    dynamodb.set_down(false);
    let (status, _, body) = check.call(session()).await;
    assert_eq!(status, 200, "recovers once DynamoDB is back: {body}");
    eprintln!("DynamoDB down: 503 in {took:?}; recovered on the next request");
}

#[tokio::test]
async fn throttling_is_absorbed_by_sdk_retries_then_bounded() {
    let world = World::new().await;
    let (token, _) = logged_in(&world, &world.login().await).await;
    let proxy = DynamoDbProxy::start(&world.standins.dynamodb).await;
    let sdk = StandIns::sdk_config(&proxy.endpoint).await;
    let check = CheckSession::new(DynamoSessionStore::new(&sdk, world.table.clone()));
    let session = || HttpEvent::new("GET", "/session").bearer(&token);

    proxy.throttle_next(2);
    let answer = call(&check, session()).await;
    assert_eq!(answer.status, 200, "two throttles absorbed: {}", answer.raw);
    assert_eq!(proxy.throttled(), 2);

    proxy.throttle_next(1_000);
    let started = Instant::now();
    let answer = call(&check, session()).await;
    assert_error(&answer, 503, "upstream_unavailable");
    assert_eq!(proxy.throttled(), 2 + 3, "three attempts, then give up");
    assert!(started.elapsed() < ANSWER_WITHIN);
    eprintln!(
        "endless throttling: 503 after 3 attempts in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_manager_down_at_cold_start_breaks_only_login() {
    let world = World::new().await;
    let (token, _) = logged_in(&world, &world.login().await).await;
    let mut env = world.function_env();
    let closed = closed_endpoint().await;
    for (name, value) in env.iter_mut() {
        if *name == "AWS_ENDPOINT_URL_SECRETS_MANAGER" {
            *value = closed.clone();
        }
    }
    let mut login = LambdaFunction::start("login", &env).await;
    let mut check = LambdaFunction::start("check-session", &env).await;
    let (code, _) = world.wechat.issue_code();
    let (status, headers, body) = login.call(login_event(&code).build()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("upstream_unavailable")),
        "{body}"
    );
    assert_eq!(headers["retry-after"], "2");
    assert!(login.is_running());
    let (status, _, _) = check
        .call(HttpEvent::new("GET", "/session").bearer(&token).build())
        .await;
    assert_eq!(status, 200, "check-session never needs the secret");
}

#[tokio::test]
async fn secrets_manager_down_while_warm() {
    let world = World::new().await;
    let proxy = CountingProxy::start(&world.standins.secrets_manager).await;
    let sdk = StandIns::sdk_config(&proxy.endpoint).await;
    let login = login_with(
        world.store().await,
        &world.wechat.base,
        SecretsManagerSource::new(
            &sdk,
            world.secret_arn.clone(),
            wxauth_tests::world::default_app(),
        ),
        world.parsed_apps(),
    );
    logged_in(&world, &login).await;
    proxy.set_down(true);
    // The cached secret keeps logins working while Secrets Manager is down...
    logged_in(&world, &login).await;
    // ...until WeChat refuses it (rotated) and the refetch cannot reach the store.
    world.wechat.rotate_secret("rotated-while-down");
    let (code, _) = world.wechat.issue_code();
    expect_error(&login, login_event(&code), 503, "upstream_unavailable").await;
}

#[tokio::test]
async fn a_10_mb_wechat_answer_is_refused_without_reading_it() {
    let world = World::new().await;
    let login = world.login().await;
    expect_error(&login, login_event("huge"), 502, "wechat_error").await;
}

/// A login whose transaction DynamoDB cancels for throttling, endlessly: the
/// SDK's retries were spent, so it is a 503 at once, not dozens of rounds of
/// GetItem + TransactWriteItems. Contention alone is worth another round.
#[tokio::test]
async fn a_throttled_login_transaction_is_not_retried_as_contention() {
    let world = World::new().await;
    let proxy = DynamoDbProxy::start(&world.standins.dynamodb).await;
    let sdk = StandIns::sdk_config(&proxy.endpoint).await;
    let login = login_with(
        DynamoSessionStore::new(&sdk, world.table.clone()),
        &world.wechat.base,
        world.secrets().await,
        world.parsed_apps(),
    );
    proxy.cancel_transactions_next(1_000);
    let (code, _) = world.wechat.issue_code();
    assert_error(
        &call(&login, login_event(&code)).await,
        503,
        "upstream_unavailable",
    );
    // A cancelled transaction wrote nothing: no read-back follows it.
    let (gets, transactions) = (
        proxy.calls("BatchGetItem"),
        proxy.calls("TransactWriteItems"),
    );
    assert_eq!((gets, transactions), (1, 1), "DynamoDB calls for one login");

    // Without the cancellations the next login goes through: one more of each.
    proxy.cancel_transactions_next(0);
    let (code, _) = world.wechat.issue_code();
    assert_eq!(call(&login, login_event(&code)).await.status, 200);
    assert_eq!(
        (
            proxy.calls("BatchGetItem"),
            proxy.calls("TransactWriteItems")
        ),
        (2, 2)
    );
}

/// A slow table: the login's transaction reaches DynamoDB and commits, but its
/// answer comes back only after the write's budget. Giving up on the call does
/// not undo it, so the release binary reads the new session back, consistently,
/// and answers 200 within the invocation's time, with a token that works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_login_whose_answer_is_late_is_read_back() {
    let world = World::new().await;
    let proxy = DynamoDbProxy::start(&world.standins.dynamodb).await;
    let env: Vec<(&str, String)> = world
        .function_env()
        .into_iter()
        .map(|(name, value)| match name {
            "AWS_ENDPOINT_URL_DYNAMODB" => (name, proxy.endpoint.clone()),
            _ => (name, value),
        })
        .collect();
    let mut login = LambdaFunction::start("login", &env).await;
    // A 3-second invocation: the write's budget ends 0.75 s before it.
    login.timeout = Duration::from_secs(3);
    proxy.delay_answers("TransactWriteItems", Duration::from_secs(6));
    let (code, issued) = world.wechat.issue_code();
    let started = Instant::now();
    let (status, _, body) = login.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "{body}\n{}", login.logs.text());
    assert!(started.elapsed() < login.timeout, "{:?}", started.elapsed());
    assert_eq!(body["openid"], issued.openid.as_str());
    // The SDK may send the transaction again after its own attempt timeout
    // (2 s): with the same ClientRequestToken, DynamoDB applies it once.
    assert!(proxy.calls("TransactWriteItems") >= 1);
    let token = body["token"].as_str().unwrap();
    let account = world
        .item(&wxauth_tests::world::home_pk(&issued.openid))
        .await
        .expect("the account");
    let key = wxauth::domain::token::SessionToken::parse(token)
        .unwrap()
        .key();
    let sessions: Vec<&String> = account["sessions"].as_m().unwrap().keys().collect();
    assert_eq!(sessions, [key.as_str()], "one session, the one answered");
    let check = world.check().await;
    let answer = call(&check, HttpEvent::new("GET", "/session").bearer(token)).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    login.stop().await;
    let logs = login.logs.text();
    assert!(
        wxauth_tests::logs::has_metric(
            &wxauth_tests::logs::metric_records(&logs),
            "SessionWriteConfirmed",
            &[("Function", "login")]
        ),
        "{logs}"
    );
}

/// The refresh transaction commits but its answer comes back too late: the
/// release binary reads the new session back and answers 200 with the new
/// pair within the invocation's time. A 503 would leave the client holding a
/// spent token, which, presented again after the grace, revokes its family.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_refresh_whose_answer_is_late_is_read_back() {
    let world = World::new().await;
    let proxy = DynamoDbProxy::start(&world.standins.dynamodb).await;
    let env: Vec<(&str, String)> = world
        .function_env()
        .into_iter()
        .map(|(name, value)| match name {
            "AWS_ENDPOINT_URL_DYNAMODB" => (name, proxy.endpoint.clone()),
            _ => (name, value),
        })
        .collect();
    let mut login = LambdaFunction::start("login", &env).await;
    let (code, _) = world.wechat.issue_code();
    let (status, _, logged_in) = login.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "{logged_in}");
    login.timeout = Duration::from_secs(3);
    proxy.delay_answers("TransactWriteItems", Duration::from_secs(6));
    let refresh = |token: &str| {
        HttpEvent::new("POST", "/refresh")
            .json(&serde_json::json!({"refreshToken": token}))
            .build()
    };
    let started = Instant::now();
    let (status, _, body) = login
        .call(refresh(logged_in["refreshToken"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{body}\n{}", login.logs.text());
    assert!(started.elapsed() < login.timeout, "{:?}", started.elapsed());
    let check = world.check().await;
    let token = body["token"].as_str().unwrap();
    let answer = call(&check, HttpEvent::new("GET", "/session").bearer(token)).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    // The new refresh token is the family's live one.
    proxy.delay_answers("TransactWriteItems", Duration::ZERO);
    login.timeout = Duration::from_secs(10);
    let (status, _, next) = login
        .call(refresh(body["refreshToken"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{next}");
    login.stop().await;
}

/// JWT mode with Secrets Manager slow for minutes (it holds every answer):
/// the re-read of the signing key gives up within its budget and waits
/// before the next try, the keys loaded go on signing, and nothing is read
/// between a committed refresh and its answer. Logins and refreshes answer
/// 200 in time; the old code took the SDK's timeout twice per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_secrets_manager_logs_nobody_out_in_jwt_mode() {
    let world = World::new().await;
    let arn = world
        .standins
        .create_secret(wxauth_tests::rotation::UNROTATED_SECRET)
        .await;
    let mut rotation_env = world.function_env();
    rotation_env.push(("SIGNING_KEY_SECRET_ID", arn.clone()));
    let mut rotation = LambdaFunction::start("rotate-signing-key", &rotation_env).await;
    wxauth_tests::rotation::run_steps(
        &mut rotation,
        &arn,
        "33333333-aaaa-4000-8000-000000000001",
        1,
    )
    .await;
    rotation.stop().await;

    let secrets = DynamoDbProxy::start(&world.standins.secrets_manager).await;
    let mut env: Vec<(&str, String)> = world
        .function_env()
        .into_iter()
        .map(|(name, value)| match name {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER" => (name, secrets.endpoint.clone()),
            _ => (name, value),
        })
        .collect();
    env.extend([
        ("SIGNING_KEY_SECRET_ID", arn.clone()),
        ("ISSUER", "https://auth.wxauth.test".to_owned()),
        // Every request is due for a re-read: the outage meets the first one.
        ("SIGNING_KEY_REREAD_SECONDS", "0".to_owned()),
    ]);
    let mut login = LambdaFunction::start("login", &env).await;
    let (code, _) = world.wechat.issue_code();
    let (status, _, logged_in) = login.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "{logged_in}");

    secrets.delay_answers("GetSecretValue", Duration::from_secs(60));
    login.timeout = Duration::from_secs(4);
    let before = secrets.calls("GetSecretValue");
    let mut refresh_token = logged_in["refreshToken"].as_str().unwrap().to_owned();
    let check = CheckSession::new(world.store().await).with_token_check(
        wxauth::services::access::TokenCheck::new(Some(wxauth::domain::jwt::JwtSettings {
            issuer: "https://auth.wxauth.test".into(),
            audience: wxauth::domain::jwt::DEFAULT_AUDIENCE.into(),
        })),
    );
    for round in 0..4 {
        let event = HttpEvent::new("POST", "/refresh")
            .json(&serde_json::json!({"refreshToken": refresh_token}))
            .build();
        let started = Instant::now();
        let (status, _, body) = login.call(event).await;
        assert_eq!(status, 200, "round {round}: {body}\n{}", login.logs.text());
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "round {round}: {:?}",
            started.elapsed()
        );
        refresh_token = body["refreshToken"].as_str().unwrap().to_owned();
        let token = body["token"].as_str().unwrap();
        assert_eq!(token.matches('.').count(), 2, "a JWT");
        let answer = call(&check, HttpEvent::new("GET", "/session").bearer(token)).await;
        assert_eq!(
            answer.status, 200,
            "signed with a key checkers accept: {}",
            answer.raw
        );
    }
    // One failed re-read (the three stages at once), then a pause: the next
    // requests read nothing.
    let during = secrets.calls("GetSecretValue") - before;
    assert!(
        (1..=3).contains(&during),
        "{during} reads during the outage"
    );
    let (code, _) = world.wechat.issue_code();
    let (status, _, body) = login.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "a login during the outage: {body}");
    assert_eq!(secrets.calls("GetSecretValue") - before, during);
    login.stop().await;
}
