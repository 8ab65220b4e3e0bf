//! Risk control at sign-up (../shared/spec/API.md, "Risk control"): WeChat's
//! risk rank of a new mini-program user, recorded or enforced, and never a
//! reason for a login to fail. Through the release binaries.

use serde_json::Value;
use wechat_sim::OAuthUser;
use wxauth_tests::admin::admin;
use wxauth_tests::invoke::login_event_in;
use wxauth_tests::logs::{has_metric, metric_records};
use wxauth_tests::runtime::LambdaFunction;
use wxauth_tests::world::{APPID, OAUTH_APPID, World};

async fn login_function(world: &World, control: &str, reject_rank: &str) -> LambdaFunction {
    let mut env = world.function_env();
    env.push(("RISK_CONTROL", control.to_owned()));
    env.push(("RISK_REJECT_RANK", reject_rank.to_owned()));
    LambdaFunction::start("login", &env).await
}

/// A first login through the default mini-program, WeChat ranking the new
/// user as `set_risk` says.
async fn sign_up(
    world: &World,
    login: &mut LambdaFunction,
    openid: &str,
    errcode: i64,
    rank: i64,
) -> (u16, Value) {
    world.wechat.set_risk(openid, errcode, rank);
    let (code, _) = world.wechat.issue_code_in(APPID, openid, None);
    let (status, _, body) = login.call(login_event_in(APPID, &code).build()).await;
    (status, body)
}

/// What the table holds about `openid`: its items' keys.
async fn items_of(world: &World, openid: &str) -> Vec<String> {
    world
        .scan(&world.table)
        .await
        .into_iter()
        .filter(|item| format!("{item:?}").contains(openid))
        .filter_map(|item| item["pk"].as_s().ok().cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_refuses_a_risky_sign_up_and_creates_nothing() {
    let world = World::several_apps().await;
    let mut login = login_function(&world, "enforce", "3").await;

    let (status, body) = sign_up(&world, &mut login, "oRISKY00000000000000000001", 0, 3).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("risk_rejected")),
        "{body}"
    );
    assert!(
        items_of(&world, "oRISKY00000000000000000001")
            .await
            .is_empty()
    );
    assert!(
        world.scan(&world.log_table).await.is_empty(),
        "no user, no entry"
    );

    // Below the threshold: the account is made, with its rank.
    let (status, body) = sign_up(&world, &mut login, "oCALM000000000000000000001", 0, 2).await;
    assert_eq!(status, 200, "{body}");
    let user_id = body["userId"].as_str().unwrap().to_owned();
    let (_, shown, _) = admin(&world, &["show", &user_id]);
    assert_eq!(shown["riskRank"], 2, "{shown}");
    let (_, log, _) = admin(&world, &["log", &user_id]);
    assert_eq!(log[0]["riskRank"], 2, "{log}");

    // A returning user is not asked about; nor is an oauth app's sign-up.
    let calls = world.wechat.oauth_and_risk_calls().2;
    let (code, _) = world
        .wechat
        .issue_code_in(APPID, "oCALM000000000000000000001", None);
    let (status, _, _) = login.call(login_event_in(APPID, &code).build()).await;
    assert_eq!(status, 200);
    let oauth = world.wechat.issue_oauth_code(
        OAUTH_APPID,
        OAuthUser {
            openid: "oWEB0000000000000000000001".into(),
            unionid: None,
            scope: "snsapi_base".into(),
            unionid_in_token: false,
        },
    );
    let (status, _, _) = login
        .call(login_event_in(OAUTH_APPID, &oauth).build())
        .await;
    assert_eq!(status, 200);
    assert_eq!(world.wechat.oauth_and_risk_calls().2, calls);

    login.stop().await;
    let records = metric_records(&login.logs.text());
    assert!(has_metric(
        &records,
        "RiskRejected",
        &[("Function", "login")]
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_keeps_the_rank_and_refuses_nobody() {
    let world = World::several_apps().await;
    let mut login = login_function(&world, "record", "1").await;
    let (status, body) = sign_up(&world, &mut login, "oRECORD0000000000000000001", 0, 4).await;
    assert_eq!(status, 200, "{body}");
    let (_, shown, _) = admin(&world, &["show", body["userId"].as_str().unwrap()]);
    assert_eq!(shown["riskRank"], 4);
    login.stop().await;
}

/// Any failure of the check lets the sign-up go on without a rank: an
/// errcode (61010: the user has not opened the mini-program lately), or no
/// answer within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_fails_open() {
    let world = World::several_apps().await;
    let mut login = login_function(&world, "enforce", "1").await;
    let (status, body) = sign_up(&world, &mut login, "oSTALE00000000000000000001", 61010, 0).await;
    assert_eq!(status, 200, "{body}");
    let (_, shown, _) = admin(&world, &["show", body["userId"].as_str().unwrap()]);
    assert!(shown.get("riskRank").is_none(), "{shown}");

    // WeChat holds this answer for 30 s: a 200 at all means the check gave
    // up within its second (after 8 s the write would have had no time left).
    world.wechat.stall_risk_next(1);
    let (status, body) = sign_up(&world, &mut login, "oSLOW000000000000000000001", 0, 4).await;
    assert_eq!(status, 200, "{body}");
    login.stop().await;
    let records = metric_records(&login.logs.text());
    assert!(has_metric(
        &records,
        "RiskCheckFailed",
        &[("Function", "login")]
    ));
}
