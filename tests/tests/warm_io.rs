//! Init does the one-time work and requests do none of it: the connections to
//! DynamoDB, Secrets Manager and WeChat are opened and the appsecret fetched
//! during init, so from the very first request on there is no new connection,
//! no Secrets Manager call, and exactly the calls each route needs (login: 1
//! WeChat call + 1 PutItem; check-session and decrypt-phone: 1 GetItem).
//! Counted at the stand-ins through counting proxies, with the release binaries.

use std::time::Duration;

use wxauth_tests::events::HttpEvent;
use wxauth_tests::invoke::login_event;
use wxauth_tests::proxy::CountingProxy;
use wxauth_tests::runtime::LambdaFunction;
use wxauth_tests::world::{APPID, World, encrypt_for, phone_plaintext};

const WARM_CALLS: u64 = 20;

fn env_through(
    world: &World,
    dynamodb: &CountingProxy,
    secrets: &CountingProxy,
) -> Vec<(&'static str, String)> {
    let mut env = world.function_env();
    for (name, value) in env.iter_mut() {
        match *name {
            "AWS_ENDPOINT_URL_DYNAMODB" => *value = dynamodb.endpoint.clone(),
            "AWS_ENDPOINT_URL_SECRETS_MANAGER" => *value = secrets.endpoint.clone(),
            _ => {}
        }
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_warm_path_reuses_connections_and_the_cached_secret() {
    let world = World::new().await;
    let dynamodb = CountingProxy::start(&world.standins.dynamodb).await;
    let secrets = CountingProxy::start(&world.standins.secrets_manager).await;
    let mut login = LambdaFunction::start("login", &env_through(&world, &dynamodb, &secrets)).await;
    login
        .init_duration(Duration::from_secs(10))
        .await
        .expect("init finished");
    // Init fetched the secret and opened a connection to each upstream.
    let (db, sm, wx_conns, wx_calls) = (
        dynamodb.counts(),
        secrets.counts(),
        world.wechat.connections(),
        world.wechat.calls(),
    );
    assert_eq!(sm.op("GetSecretValue"), 1, "secret prefetched during init");
    assert_eq!(
        db.connections, 1,
        "session table connection opened during init"
    );
    assert_eq!(wx_conns, 1, "WeChat connection opened during init");
    assert_eq!(wx_calls, 0, "the warm-up calls no WeChat API");
    let puts_at_init = db.op("PutItem");
    assert_eq!(puts_at_init, 1, "the warm-up's never-true conditional put");

    let call = async |login: &mut LambdaFunction| {
        let (code, _) = world.wechat.issue_code();
        let (status, _, body) = login.call(login_event(&code).build()).await;
        assert_eq!(status, 200, "{body}");
    };
    for _ in 0..WARM_CALLS {
        call(&mut login).await;
    }
    let (db2, sm2) = (dynamodb.counts(), secrets.counts());
    assert_eq!(
        sm2, sm,
        "no Secrets Manager call or connection from the first login on"
    );
    assert_eq!(
        db2.connections, db.connections,
        "no new DynamoDB connection"
    );
    // One active session per user (the default): each login reads the user's
    // current session and replaces it in one transaction.
    assert_eq!(db2.op("GetItem"), WARM_CALLS, "one GetItem per login");
    assert_eq!(
        db2.op("TransactWriteItems"),
        WARM_CALLS,
        "one transaction per login"
    );
    assert_eq!(db2.op("PutItem"), puts_at_init, "no plain PutItem");
    assert_eq!(db2.operations.len(), 3, "{:?}", db2.operations);
    assert_eq!(
        world.wechat.connections(),
        wx_conns,
        "no new WeChat connection"
    );
    assert_eq!(
        world.wechat.calls() - wx_calls,
        WARM_CALLS as u32,
        "one WeChat call per login"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_and_phone_make_exactly_one_get_item_per_request() {
    let world = World::new().await;
    let dynamodb = CountingProxy::start(&world.standins.dynamodb).await;
    let secrets = CountingProxy::start(&world.standins.secrets_manager).await;
    let env = env_through(&world, &dynamodb, &secrets);

    // A session to read, made by the product's own login (not through the proxies).
    let login = world.login().await;
    let (code, issued) = world.wechat.issue_code();
    let answer = wxauth_tests::invoke::call(&login, wxauth_tests::invoke::login_event(&code)).await;
    let token = answer.body["token"].as_str().unwrap().to_owned();

    let mut check = LambdaFunction::start("check-session", &env).await;
    let mut phone = LambdaFunction::start("decrypt-phone", &env).await;
    check
        .init_duration(Duration::from_secs(10))
        .await
        .expect("init finished");
    phone
        .init_duration(Duration::from_secs(10))
        .await
        .expect("init finished");
    let first = dynamodb.counts();
    assert_eq!(first.connections, 2, "each function connected during init");
    let session_event = || HttpEvent::new("GET", "/session").bearer(&token).build();
    let phone_event = || {
        HttpEvent::new("POST", "/phone")
            .bearer(&token)
            .json(&encrypt_for(
                &issued,
                &phone_plaintext(APPID, "13800138000"),
            ))
            .build()
    };
    for _ in 0..WARM_CALLS {
        assert_eq!(check.call(session_event()).await.0, 200);
        assert_eq!(phone.call(phone_event()).await.0, 200);
    }
    let warm = dynamodb.counts();
    assert_eq!(
        warm.op("GetItem") - first.op("GetItem"),
        2 * WARM_CALLS,
        "one GetItem per request"
    );
    assert_eq!(
        warm.connections, first.connections,
        "no new DynamoDB connection"
    );
    assert_eq!(
        warm.operations.len(),
        1,
        "GetItem only: {:?}",
        warm.operations
    );
    assert_eq!(
        secrets.counts().connections,
        0,
        "check-session and decrypt-phone never touch the secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_single_session_a_login_is_one_put_item() {
    let world = World::new().await;
    let dynamodb = CountingProxy::start(&world.standins.dynamodb).await;
    let secrets = CountingProxy::start(&world.standins.secrets_manager).await;
    let mut env = env_through(&world, &dynamodb, &secrets);
    env.push(("SINGLE_SESSION", "false".into()));
    let mut login = LambdaFunction::start("login", &env).await;
    login
        .init_duration(Duration::from_secs(10))
        .await
        .expect("init finished");
    let at_init = dynamodb.counts();
    for _ in 0..WARM_CALLS {
        let (code, _) = world.wechat.issue_code();
        let (status, _, body) = login.call(login_event(&code).build()).await;
        assert_eq!(status, 200, "{body}");
    }
    let after = dynamodb.counts();
    assert_eq!(
        after.op("PutItem") - at_init.op("PutItem"),
        WARM_CALLS,
        "one PutItem per login"
    );
    assert_eq!(
        after.operations.len(),
        1,
        "PutItem only: {:?}",
        after.operations
    );
    assert_eq!(after.connections, at_init.connections);
}
