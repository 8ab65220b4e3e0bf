//! Load and races on DynamoDB Local through the handler code, with several
//! function instances side by side as Lambda scales out (each its own SDK
//! client and connection pool, like separate sandboxes).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use tokio::sync::Semaphore;
use wxauth::domain::token::SessionToken;
use wxauth_tests::events::HttpEvent;
use wxauth_tests::invoke::{call, login_event};
use wxauth_tests::world::{LoginHandler, World};

const INSTANCES: usize = 8;
const IN_FLIGHT: usize = 32;
const LOGINS: usize = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_lose_no_session_and_answer_no_5xx() {
    let world = Arc::new(World::new().await);
    let mut logins = Vec::new();
    let mut checks = Vec::new();
    for _ in 0..INSTANCES {
        logins.push(Arc::new(world.login().await));
        checks.push(Arc::new(world.check().await));
    }
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let started = Instant::now();

    let mut tasks = Vec::new();
    for i in 0..LOGINS {
        let (world, login, gate) = (
            Arc::clone(&world),
            Arc::clone(&logins[i % INSTANCES]),
            Arc::clone(&gate),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("semaphore");
            let (code, issued) = world.wechat.issue_code();
            let answer = call(&*login, login_event(&code)).await;
            (
                answer.status,
                answer.body["token"].as_str().map(str::to_owned),
                issued.openid,
            )
        }));
    }
    let mut issued = Vec::new();
    for task in tasks {
        let (status, token, openid) = task.await.expect("login task");
        assert_eq!(status, 200, "every login answers 200");
        issued.push((token.expect("token"), openid));
    }

    let lost = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for (i, (token, openid)) in issued.into_iter().enumerate() {
        let (check, gate, lost) = (
            Arc::clone(&checks[(i + 3) % INSTANCES]),
            Arc::clone(&gate),
            Arc::clone(&lost),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("semaphore");
            let answer = call(&*check, HttpEvent::new("GET", "/session").bearer(&token)).await;
            assert!(answer.status < 500, "{}", answer.raw);
            if answer.status != 200 || answer.body["openid"] != openid.as_str() {
                lost.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for task in tasks {
        task.await.expect("check task");
    }
    assert_eq!(
        lost.load(Ordering::SeqCst),
        0,
        "a login that answered 200 has a working session"
    );
    eprintln!(
        "{} requests ({LOGINS} logins + {LOGINS} checks) on {INSTANCES} instances, {IN_FLIGHT} in flight: {:.1} s",
        2 * LOGINS,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_code_sent_by_sixteen_concurrent_logins_wins_once() {
    let world = Arc::new(World::new().await);
    let (code, _) = world.wechat.issue_code();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (world, code) = (Arc::clone(&world), code.clone());
        tasks.push(tokio::spawn(async move {
            let login = world.login().await;
            let answer = call(&login, login_event(&code)).await;
            (
                answer.status,
                answer.body["error"].as_str().map(str::to_owned),
            )
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            (200, _) => ok += 1,
            (401, Some(error)) => assert_eq!(error, "invalid_code"),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(ok, 1, "exactly one login gets the session");
}

#[tokio::test]
async fn a_forced_token_collision_is_refused_and_login_draws_again() {
    let world = World::new().await;
    let fixed = SessionToken::generate().unwrap();
    let forced = fixed.clone();
    let draws = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&draws);
    // The first two draws give the same token; later ones are fresh.
    let login: LoginHandler = world.login().await.with_token_source(Box::new(move || {
        if counter.fetch_add(1, Ordering::SeqCst) < 2 {
            Ok(forced.clone())
        } else {
            SessionToken::generate()
        }
    }));

    let (first_code, first) = world.wechat.issue_code();
    let answer = call(&login, login_event(&first_code)).await;
    assert_eq!(answer.body["token"], fixed.expose());

    let (second_code, second) = world.wechat.issue_code();
    let answer = call(&login, login_event(&second_code)).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    let second_token = answer.body["token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, fixed.expose(), "login drew a new token");
    assert_eq!(draws.load(Ordering::SeqCst), 3);

    // The first user's session was not overwritten by the colliding put.
    let item = world.item(fixed.key().as_str()).await.unwrap();
    assert_eq!(item["openid"], AttributeValue::S(first.openid.clone()));
    let check = world.check().await;
    let mine = call(
        &check,
        HttpEvent::new("GET", "/session").bearer(&second_token),
    )
    .await;
    assert_eq!(mine.body["openid"], json!(second.openid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_of_one_user_leave_exactly_one_valid_session() {
    const LOGINS: usize = 16;
    let world = Arc::new(World::new().await);
    let openid = "oSAMEUSER00000000000000001";
    let mut tasks = Vec::new();
    for _ in 0..LOGINS {
        let world = Arc::clone(&world);
        let (code, _) = world.wechat.issue_code_for(openid, None);
        tasks.push(tokio::spawn(async move {
            // Each login in its own instance, as containers scaled out.
            let login = world.login().await;
            let answer = call(&login, login_event(&code)).await;
            assert_eq!(answer.status, 200, "{}", answer.raw);
            answer.body["token"].as_str().unwrap().to_owned()
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.expect("login"));
    }
    let check = world.check().await;
    let mut valid = 0;
    for token in &tokens {
        let answer = call(&check, HttpEvent::new("GET", "/session").bearer(token)).await;
        match answer.status {
            200 => valid += 1,
            401 => {}
            other => panic!("unexpected {other}: {}", answer.raw),
        }
    }
    eprintln!("{LOGINS} concurrent logins of one user: {valid} valid session(s) left");
    assert_eq!(valid, 1, "exactly one session survives");
    // And it is the one session the account lists, under the one account.
    let account = world
        .item(&wxauth_tests::world::home_pk(openid))
        .await
        .expect("account item");
    let listed: Vec<&String> = account["sessions"].as_m().unwrap().keys().collect();
    let survivor = tokens
        .iter()
        .find(|t| listed == [SessionToken::parse(t).unwrap().key().as_str()]);
    assert!(
        survivor.is_some(),
        "the account lists exactly the surviving session: {listed:?}"
    );
}
