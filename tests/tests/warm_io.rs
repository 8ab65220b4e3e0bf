//! Init does the one-time work and requests do none of it: the connections to
//! DynamoDB, Secrets Manager and WeChat are opened and the appsecret fetched
//! during init, so from the very first request on there is no new connection,
//! no Secrets Manager call, and exactly the calls each route needs (login: 1
//! WeChat call + 1 GetItem of the account + 1 TransactWriteItems; check-session
//! and decrypt-phone: 1 GetItem, plus the phone binding's UpdateItem; phone by
//! code: 1 GetItem + 1 getuserphonenumber, the access token kept in process).
//! Counted at the stand-ins through counting proxies, with the release binaries.

use std::time::Duration;

use wxauth_tests::events::HttpEvent;
use wxauth_tests::invoke::login_event;
use wxauth_tests::proxy::CountingProxy;
use wxauth_tests::runtime::LambdaFunction;
use wxauth_tests::world::{APPID, World, encrypt_for, phone_plaintext};

const WARM_CALLS: u64 = 20;

/// A world whose functions reach DynamoDB Local and moto through counting
/// proxies: the function environment, and the two proxies to read.
struct Counted {
    world: World,
    dynamodb: CountingProxy,
    secrets: CountingProxy,
    env: Vec<(&'static str, String)>,
}

async fn counted_world() -> Counted {
    let world = World::new().await;
    let dynamodb = CountingProxy::start(&world.standins.dynamodb).await;
    let secrets = CountingProxy::start(&world.standins.secrets_manager).await;
    let mut env = world.function_env();
    for (name, value) in env.iter_mut() {
        match *name {
            "AWS_ENDPOINT_URL_DYNAMODB" => *value = dynamodb.endpoint.clone(),
            "AWS_ENDPOINT_URL_SECRETS_MANAGER" => *value = secrets.endpoint.clone(),
            _ => {}
        }
    }
    Counted {
        world,
        dynamodb,
        secrets,
        env,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_warm_path_reuses_connections_and_the_cached_secret() {
    let Counted {
        world,
        dynamodb,
        secrets,
        env,
    } = counted_world().await;
    let mut login = LambdaFunction::start("login", &env).await;
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
    // One active session per identity (the default): each login reads its
    // identity (under both of its keys: the default app's may be an account
    // from before several apps) and its unionid in one BatchGetItem and, in one
    // transaction, writes the session, updates the account and deletes the
    // session it replaces.
    assert_eq!(db2.op("BatchGetItem"), WARM_CALLS, "one read per login");
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
    let Counted {
        world,
        dynamodb,
        secrets,
        env,
    } = counted_world().await;

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
    // GET /session reads its session; POST /phone its session, then, to bind
    // the number, the userId's index (where the account's home is).
    assert_eq!(
        warm.op("GetItem") - first.op("GetItem"),
        3 * WARM_CALLS,
        "one GetItem per session read, one per binding"
    );
    assert_eq!(
        warm.connections, first.connections,
        "no new DynamoDB connection"
    );
    // POST /phone binds the number to the account: its one write.
    assert_eq!(
        warm.op("UpdateItem") - first.op("UpdateItem"),
        WARM_CALLS,
        "one UpdateItem per phone number bound"
    );
    assert_eq!(
        warm.operations.len(),
        2,
        "GetItem and the binding's UpdateItem only: {:?}",
        warm.operations
    );
    assert_eq!(
        secrets.counts().connections,
        0,
        "check-session and decrypt-phone never touch the secret"
    );
}

/// A warm login, with or without one session per user: one consistent
/// GetItem of the account, one TransactWriteItems (the session, the account,
/// the log entry), nothing else and no new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_single_session_a_login_is_one_read_and_one_transaction() {
    let Counted {
        world,
        dynamodb,
        secrets: _secrets,
        mut env,
    } = counted_world().await;
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
    for operation in ["BatchGetItem", "TransactWriteItems"] {
        assert_eq!(
            after.op(operation) - at_init.op(operation),
            WARM_CALLS,
            "one {operation} per login: {:?}",
            after.operations
        );
    }
    assert_eq!(
        after.op("PutItem"),
        at_init.op("PutItem"),
        "no other write: {:?}",
        after.operations
    );
    assert_eq!(after.connections, at_init.connections);
}

/// Phone by code: the first request fetches the access token (the appsecret,
/// one stable_token call) and shares it; from then on each request is one
/// GetItem and one getuserphonenumber call: the token comes from the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_by_code_keeps_the_access_token_in_the_process() {
    let Counted {
        world,
        dynamodb,
        secrets,
        env,
    } = counted_world().await;
    let login = world.login().await;
    let (code, issued) = world.wechat.issue_code();
    let answer = wxauth_tests::invoke::call(&login, login_event(&code)).await;
    let token = answer.body["token"].as_str().unwrap().to_owned();

    let mut phone = LambdaFunction::start("decrypt-phone", &env).await;
    phone
        .init_duration(Duration::from_secs(10))
        .await
        .expect("init finished");
    assert_eq!(secrets.counts().connections, 0, "no secret read at init");
    let by_code = || {
        let code = world.wechat.issue_phone_code(&issued.openid, "13800138000");
        HttpEvent::new("POST", "/phone")
            .bearer(&token)
            .json(&serde_json::json!({ "code": code }))
            .build()
    };
    let (status, _, body) = phone.call(by_code()).await;
    assert_eq!(status, 200, "{body}\n{}", phone.logs.text());
    assert_eq!(world.wechat.stable_token_calls(), (1, 0));
    assert_eq!(secrets.counts().op("GetSecretValue"), 1);

    let (first_db, first_sm) = (dynamodb.counts(), secrets.counts());
    let (first_wx_conns, (first_phone_calls, _)) =
        (world.wechat.connections(), world.wechat.user_api_calls());
    for _ in 0..WARM_CALLS {
        let (status, _, body) = phone.call(by_code()).await;
        assert_eq!(status, 200, "{body}");
    }
    let warm = dynamodb.counts();
    assert_eq!(
        warm.op("GetItem") - first_db.op("GetItem"),
        2 * WARM_CALLS,
        "one GetItem for the session, one for the binding's index, per request"
    );
    assert_eq!(
        warm.operations.len(),
        first_db.operations.len(),
        "no new kind of table call: {:?}",
        warm.operations
    );
    assert_eq!(warm.op("PutItem"), first_db.op("PutItem"), "no token write");
    assert_eq!(secrets.counts(), first_sm, "no Secrets Manager call");
    assert_eq!(world.wechat.stable_token_calls(), (1, 0));
    assert_eq!(
        world.wechat.connections(),
        first_wx_conns,
        "no new WeChat connection"
    );
    assert_eq!(
        world.wechat.user_api_calls().0 - first_phone_calls,
        WARM_CALLS as u32,
        "one getuserphonenumber per request"
    );
}

/// JWT mode keeps the checkers' I/O: after the first request of a container
/// (which loads the published key set), GET /session and the authorizer make
/// exactly one GetItem per request, and neither ever reads the signing key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_checks_make_one_get_item_per_request() {
    let Counted {
        world,
        dynamodb,
        secrets,
        mut env,
    } = counted_world().await;
    let key = wxauth::domain::jwt::generate_key("warm-io").unwrap();
    let arn = world
        .standins
        .create_secret(&serde_json::to_string(&key).unwrap())
        .await;
    env.push(("ISSUER", "https://auth.wxauth.test".to_owned()));
    let mut login_env = world.function_env();
    login_env.push(("ISSUER", "https://auth.wxauth.test".to_owned()));
    login_env.push(("SIGNING_KEY_SECRET_ID", arn));
    let mut login = LambdaFunction::start("login", &login_env).await;
    let (code, _) = world.wechat.issue_code();
    let (status, _, body) = login.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    login.stop().await;

    let mut check = LambdaFunction::start("check-session", &env).await;
    let mut authorizer = LambdaFunction::start("authorizer", &env).await;
    let session_event = || HttpEvent::new("GET", "/session").bearer(&token).build();
    let authorizer_event =
        || wxauth_tests::events::authorizer_event(Some(&format!("Bearer {token}")));
    // The first request of each container loads the key set.
    assert_eq!(check.call(session_event()).await.0, 200);
    assert!(matches!(
        authorizer.invoke(authorizer_event()).await,
        wxauth_tests::runtime::Outcome::Response(answer) if answer["isAuthorized"] == true
    ));
    let first = dynamodb.counts();
    for _ in 0..WARM_CALLS {
        assert_eq!(check.call(session_event()).await.0, 200);
        assert!(matches!(
            authorizer.invoke(authorizer_event()).await,
            wxauth_tests::runtime::Outcome::Response(answer) if answer["isAuthorized"] == true
        ));
    }
    let warm = dynamodb.counts();
    assert_eq!(
        warm.op("GetItem") - first.op("GetItem"),
        2 * WARM_CALLS,
        "one GetItem (the session) per request"
    );
    assert_eq!(warm.operations.len(), 1, "{:?}", warm.operations);
    assert_eq!(
        secrets.counts().connections,
        0,
        "the checkers never read the signing key"
    );
    check.stop().await;
    authorizer.stop().await;
}

/// A refresh reads the token's item and its family's kept session_key at once
/// and writes one transaction; one refresh in eight also reads the userId
/// index and the account (to prune the account's expired sessions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_is_two_reads_at_once_and_one_transaction() {
    let Counted {
        world,
        dynamodb,
        // Kept alive: dropping the proxy would stop it.
        secrets: _secrets,
        env,
    } = counted_world().await;
    let mut login = LambdaFunction::start("login", &env).await;
    let (code, _) = world.wechat.issue_code();
    let (status, _, body) = login.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "{body}");
    let mut refresh_token = body["refreshToken"].as_str().unwrap().to_owned();
    let before = dynamodb.counts();
    const REFRESHES: u64 = 16;
    for _ in 0..REFRESHES {
        let event = HttpEvent::new("POST", "/refresh")
            .json(&serde_json::json!({"refreshToken": refresh_token}))
            .build();
        let (status, _, body) = login.call(event).await;
        assert_eq!(status, 200, "{body}");
        refresh_token = body["refreshToken"].as_str().unwrap().to_owned();
    }
    let after = dynamodb.counts();
    assert_eq!(
        after.op("TransactWriteItems") - before.op("TransactWriteItems"),
        REFRESHES,
        "one transaction per refresh"
    );
    let full_paths = REFRESHES / 8;
    assert_eq!(
        after.op("GetItem") - before.op("GetItem"),
        2 * REFRESHES + full_paths,
        "two reads per refresh, one more (the identity the token names) for each pruning one"
    );
    login.stop().await;
}
