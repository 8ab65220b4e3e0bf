//! Accounts (../shared/spec/API.md, "Accounts"): every row, through the release
//! binaries under the Lambda Runtime API, on DynamoDB Local with the login log
//! table, and the operator tool `wxauth-admin` as the operator runs it (every
//! command docs/operations.md shows).

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use wxauth_tests::admin::{admin, admin_with};
use wxauth_tests::events::HttpEvent;
use wxauth_tests::invoke::login_event;
use wxauth_tests::logs::{has_metric, metric_records};
use wxauth_tests::runtime::LambdaFunction;
use wxauth_tests::stack::Stack;
use wxauth_tests::world::{APPID, World, encrypt_for, phone_plaintext, sign};

/// `wxauth-admin`, the binary cargo built, as an operator runs it: only the
/// standard AWS variables and the two table names.
fn item_text(items: &[std::collections::HashMap<String, AttributeValue>]) -> String {
    format!("{items:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_from_first_login_to_deletion() {
    let world = World::new().await;
    let mut stack = Stack::start(&world, &[], &[]).await;
    let openid = "oACCOUNT000000000000000001";

    // The first login creates the account; a later one finds it.
    let (code, _) = world.wechat.issue_code_for(openid, None);
    let (status, first) = stack.log_in_with_code(&code).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["newUser"], true);
    let user_id = first["userId"].as_str().unwrap().to_owned();
    assert!(
        wxauth::domain::account::UserId::parse(&user_id).is_some(),
        "{user_id}"
    );
    let (code, issued) = world.wechat.issue_code_for(openid, Some("uACCOUNT"));
    let (status, second) = stack.log_in_with_code(&code).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        (second["newUser"].clone(), second["userId"].clone()),
        (json!(false), json!(user_id))
    );
    assert_eq!(second["unionid"], "uACCOUNT");
    let token = second["token"].as_str().unwrap().to_owned();

    // userId on every answer about the session.
    let (status, session) = stack.with_token("GET", "/session", &token).await;
    assert_eq!(
        (status, session["userId"].as_str()),
        (200, Some(user_id.as_str()))
    );
    let raw = r#"{"nickName":"A"}"#;
    let signed = json!({"rawData": raw, "signature": sign(raw, &issued.session_key)});
    let (status, posted) = stack.with_json("POST", "/session", &token, &signed).await;
    assert_eq!(
        (status, posted["userId"].as_str()),
        (200, Some(user_id.as_str()))
    );
    let allowed = stack.authorized(&token).await;
    assert_eq!(allowed["context"]["userId"], user_id.as_str(), "{allowed}");
    let mut me = HttpEvent::new("GET", "/me").build();
    me["requestContext"]["authorizer"] = json!({"lambda": allowed["context"]});
    let (status, _, me) = stack.check.call(me).await;
    assert_eq!(
        (status, me["userId"].as_str()),
        (200, Some(user_id.as_str()))
    );

    // The phone number is bound: by ciphertext, then replaced by code.
    let (status, account) = stack.with_token("GET", "/account", &token).await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["userId"], user_id.as_str());
    assert_eq!(account["unionid"], "uACCOUNT");
    assert!(account.get("phoneNumber").is_none(), "{account}");
    let payload = encrypt_for(&issued, &phone_plaintext(APPID, "13811112222"));
    let (status, _) = stack.with_json("POST", "/phone", &token, &payload).await;
    assert_eq!(status, 200);
    let (_, account) = stack.with_token("GET", "/account", &token).await;
    assert_eq!(account["purePhoneNumber"], "13811112222", "{account}");
    let phone_code = world.wechat.issue_phone_code(openid, "13933334444");
    let (status, _) = stack
        .with_json("POST", "/phone", &token, &json!({"code": phone_code}))
        .await;
    assert_eq!(status, 200);
    let (_, account) = stack.with_token("GET", "/account", &token).await;
    assert_eq!(account["purePhoneNumber"], "13933334444", "{account}");
    assert_eq!(account["countryCode"], "86");
    let keys: Vec<&String> = account.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "apps",
            "countryCode",
            "createdAt",
            "lastLoginAt",
            "openid",
            "phoneNumber",
            "purePhoneNumber",
            "unionid",
            "userId"
        ]
    );

    // The operator sees it, and every function answers it as the contract says.
    let (code_show, shown, _) = admin(&world, &["show", &user_id]);
    assert_eq!(code_show, 0);
    assert_eq!(
        (shown["status"].as_str(), shown["openid"].as_str()),
        (Some("active"), Some(openid))
    );
    assert_eq!(shown["purePhoneNumber"], "13933334444");
    assert!(shown["phoneBoundAt"].is_i64(), "{shown}");
    let (_, by_openid, _) = admin(&world, &["show", openid]);
    assert_eq!(by_openid, shown);
    let (code_bad, nothing, stderr) = admin(&world, &["drop", &user_id]);
    assert_eq!((code_bad, nothing), (2, Value::Null));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // DELETE /account: everything kept for the user goes, at once.
    let (status, _) = stack.with_token("DELETE", "/account", &token).await;
    assert_eq!(status, 204);
    let (status, body) = stack.with_token("GET", "/session", &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = stack.with_token("GET", "/account", &token).await;
    assert_eq!(status, 401);
    assert_eq!(
        stack.authorized(&token).await,
        json!({"isAuthorized": false})
    );
    let table = world.scan(&world.table).await;
    let text = item_text(&table);
    for gone in [
        openid,
        "13933334444",
        "13811112222",
        user_id.as_str(),
        &issued.session_key,
    ] {
        assert!(
            !text.contains(gone),
            "{gone} is still in the session table: {text}"
        );
    }
    let (code_show, _, stderr) = admin(&world, &["show", &user_id]);
    assert_eq!(code_show, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // The next login of the openid is a new account.
    let (code, _) = world.wechat.issue_code_for(openid, None);
    let (status, reborn) = stack.log_in_with_code(&code).await;
    assert_eq!(status, 200);
    assert_eq!(reborn["newUser"], true);
    assert_ne!(reborn["userId"], user_id.as_str());

    // The log: every event, its fields, and nothing it must never hold.
    let (code_log, log, _) = admin(&world, &["log", &user_id]);
    assert_eq!(code_log, 0);
    let mut events: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events.first(),
        Some(&"account_deleted"),
        "newest first: {log}"
    );
    // The second login and the session it revoked share one instant.
    events[1..].sort_unstable();
    assert_eq!(
        events,
        ["account_deleted", "login", "login", "revoked"],
        "{log}"
    );
    for entry in log.as_array().unwrap() {
        assert_eq!(entry["userId"], user_id.as_str());
        assert!(entry["at"].as_str().unwrap().contains('#'));
        assert_eq!(entry["outcome"], "ok");
        assert_eq!(entry["sourceIp"], "203.0.113.7");
        assert_eq!(entry["userAgent"], "Mozilla/5.0 MicroMessenger/8.0.50");
        let expires_in =
            entry["expiresAt"].as_i64().unwrap() - wxauth::domain::time::epoch_seconds();
        assert!(
            (180 * 86_400 - 60..=180 * 86_400).contains(&expires_in),
            "{entry}"
        );
    }
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["appid"] == APPID),
        "{log}"
    );
    let all_entries = item_text(&world.scan(&world.log_table).await);
    for secret in [
        token.as_str(),
        issued.session_key.as_str(),
        openid,
        "13933334444",
        "13811112222",
        world.appsecret.as_str(),
    ] {
        assert!(!all_entries.contains(secret), "the log holds {secret}");
    }

    let logs = stack.stop().await;
    let records = metric_records(&logs);
    assert!(has_metric(
        &records,
        "AccountsCreated",
        &[("Function", "login")]
    ));
    assert!(has_metric(
        &records,
        "AccountsDeleted",
        &[("Function", "check-session")]
    ));
    assert!(
        !logs.contains("13933334444") && !logs.contains(openid),
        "logs leak"
    );
}

/// Concurrent first logins of one openid: one account, every answer with its
/// userId, exactly one `newUser: true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_logins_make_exactly_one_account() {
    const LOGINS: usize = 12;
    let world = std::sync::Arc::new(World::new().await);
    let openid = "oRACE00000000000000000000001";
    let mut tasks = Vec::new();
    for _ in 0..LOGINS {
        let world = std::sync::Arc::clone(&world);
        let (code, _) = world.wechat.issue_code_for(openid, None);
        tasks.push(tokio::spawn(async move {
            let login = world.login().await;
            let answer = wxauth_tests::invoke::call(&login, login_event(&code)).await;
            assert_eq!(answer.status, 200, "{}", answer.raw);
            answer.body
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("login"));
    }
    let user_ids: std::collections::HashSet<&str> = answers
        .iter()
        .map(|a| a["userId"].as_str().unwrap())
        .collect();
    assert_eq!(user_ids.len(), 1, "{answers:?}");
    let new_users = answers.iter().filter(|a| a["newUser"] == true).count();
    assert_eq!(new_users, 1, "{answers:?}");
    let accounts = world
        .scan(&world.table)
        .await
        .into_iter()
        .filter(|item| {
            item["pk"]
                .as_s()
                .is_ok_and(|pk| pk.starts_with(wxauth::aws::IDENTITY_PREFIX))
        })
        .count();
    assert_eq!(accounts, 1);
    // The log tells exactly what happened, however the logins contended:
    // one `login` per 200, one `revoked` per session a later login ended
    // (one session per user: every login but the first ends one), and
    // nothing under another userId (a round that lost its race leaves no
    // entry behind).
    let entries = world.scan(&world.log_table).await;
    let user_id = *user_ids.iter().next().unwrap();
    let of = |event: &str| {
        entries
            .iter()
            .filter(|e| e["event"].as_s().is_ok_and(|v| v == event))
            .count()
    };
    assert!(
        entries
            .iter()
            .all(|e| e["userId"].as_s().is_ok_and(|v| v == user_id)),
        "{entries:?}"
    );
    assert_eq!(
        (of("login"), of("revoked")),
        (LOGINS, LOGINS - 1),
        "{entries:?}"
    );
    assert_eq!(entries.len(), 2 * LOGINS - 1);
}

/// With SINGLE_SESSION=false a user holds several sessions; deletion ends them
/// all, and the authorizer refuses each at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_ends_every_session_of_the_user() {
    let world = World::new().await;
    let mut stack = Stack::start(&world, &[("SINGLE_SESSION", "false".into())], &[]).await;
    let openid = "oMULTI0000000000000000000001";
    let mut tokens = Vec::new();
    let mut user_id = String::new();
    for _ in 0..3 {
        let (code, _) = world.wechat.issue_code_for(openid, None);
        let (status, body) = stack.log_in_with_code(&code).await;
        assert_eq!(status, 200);
        tokens.push(body["token"].as_str().unwrap().to_owned());
        user_id = body["userId"].as_str().unwrap().to_owned();
    }
    for token in &tokens {
        assert_eq!(stack.authorized(token).await["isAuthorized"], true);
    }
    // One session logged out; the other two go with the account.
    let (status, _) = stack.with_token("DELETE", "/session", &tokens[2]).await;
    assert_eq!(status, 204);
    let (status, _) = stack.with_token("DELETE", "/account", &tokens[0]).await;
    assert_eq!(status, 204);
    let (_, log, _) = admin(&world, &["log", &user_id]);
    let events: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["account_deleted", "logout", "login", "login", "login"],
        "{log}"
    );
    for token in &tokens {
        assert_eq!(stack.with_token("GET", "/session", token).await.0, 401);
        assert_eq!(
            stack.authorized(token).await,
            json!({"isAuthorized": false})
        );
    }
    assert!(!item_text(&world.scan(&world.table).await).contains(openid));
    stack.stop().await;
}

/// The operator disables an account with a live session behind the authorizer:
/// refused at once everywhere, no login (403), and after an enable the old
/// sessions stay refused while a new login works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_account_cannot_log_in_and_its_sessions_end() {
    let world = World::new().await;
    let mut stack = Stack::start(&world, &[], &[]).await;
    let openid = "oDISABLE000000000000000001";
    let (code, _) = world.wechat.issue_code_for(openid, Some("uKEPT"));
    let (_, body) = stack.log_in_with_code(&code).await;
    let (token, user_id) = (
        body["token"].as_str().unwrap().to_owned(),
        body["userId"].as_str().unwrap().to_owned(),
    );
    assert_eq!(stack.authorized(&token).await["isAuthorized"], true);

    let (code_disable, disabled, _) = admin(&world, &["disable", &user_id]);
    assert_eq!(
        (code_disable, disabled["status"].as_str()),
        (0, Some("disabled"))
    );
    assert_eq!(
        stack.authorized(&token).await,
        json!({"isAuthorized": false})
    );
    assert_eq!(stack.with_token("GET", "/session", &token).await.0, 401);
    let (code, _) = world.wechat.issue_code_for(openid, None);
    let (status, refused) = stack.log_in_with_code(&code).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("account_disabled")),
        "{refused}"
    );

    let (code_enable, _, _) = admin(&world, &["enable", &user_id]);
    assert_eq!(code_enable, 0);
    assert_eq!(
        stack.authorized(&token).await,
        json!({"isAuthorized": false})
    );
    let (code, _) = world.wechat.issue_code_for(openid, None);
    let (status, back) = stack.log_in_with_code(&code).await;
    assert_eq!(
        (status, back["userId"].as_str(), back["newUser"].as_bool()),
        (200, Some(user_id.as_str()), Some(false))
    );
    // WeChat gave this login no unionid: the answer has the account's.
    assert_eq!(back["unionid"], "uKEPT");

    let (_, log, _) = admin(&world, &["log", &user_id, "--limit", "2"]);
    let events: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["login", "login_refused"]);
    assert_eq!(log[1]["outcome"], "account_disabled");
    let logs = stack.stop().await;
    assert!(has_metric(
        &metric_records(&logs),
        "Requests",
        &[("Function", "login"), ("Outcome", "account_disabled")]
    ));
}

/// `device` from the login body goes to the log, kept fields only; a bad one
/// is 400 before WeChat is called. `BIND_PHONE=false` returns the number only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_info_is_validated_and_logged_and_binding_can_be_off() {
    let world = World::new().await;
    let mut stack = Stack::start(&world, &[("BIND_PHONE", "false".into())], &[]).await;
    let (code, issued) = world.wechat.issue_code();
    let calls = world.wechat.calls();
    for device in [
        json!("iPhone"),
        json!({"model": 7}),
        json!({"brand": "x".repeat(65)}),
        // A kept field that is there must be a string.
        json!({"system": null}),
    ] {
        let event = HttpEvent::new("POST", "/login")
            .json(&json!({"code": code, "device": device}))
            .build();
        let (status, _, body) = stack.login.call(event).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{device}"
        );
    }
    assert_eq!(world.wechat.calls(), calls, "no WeChat call for a bad body");
    let device = json!({"brand": "Apple", "model": "iPhone 15", "system": "iOS 18.1", "platform": "ios",
        "SDKVersion": "3.6.0", "version": "8.0.50", "language": "zh_CN", "pixelRatio": 3});
    let event = HttpEvent::new("POST", "/login")
        .json(&json!({"code": code, "device": device}))
        .build();
    let (status, _, body) = stack.login.call(event).await;
    assert_eq!(status, 200, "{body}");
    let (token, user_id) = (
        body["token"].as_str().unwrap().to_owned(),
        body["userId"].as_str().unwrap().to_owned(),
    );
    let payload = encrypt_for(&issued, &phone_plaintext(APPID, "13755556666"));
    let (status, phone) = stack.with_json("POST", "/phone", &token, &payload).await;
    assert_eq!(
        (status, phone["purePhoneNumber"].as_str()),
        (200, Some("13755556666"))
    );
    let (_, account) = stack.with_token("GET", "/account", &token).await;
    assert!(
        account.get("phoneNumber").is_none(),
        "BIND_PHONE=false: {account}"
    );

    let (_, log, _) = admin(&world, &["log", &user_id]);
    let mut kept = device.clone();
    kept.as_object_mut().unwrap().remove("pixelRatio");
    assert_eq!(log[0]["device"], kept);
    stack.stop().await;
}

/// With SINGLE_SESSION=false a user keeps at most MAX_SESSIONS_PER_USER live
/// sessions: the login beyond revokes the one ending soonest (and logs it), so
/// what the account lists stays bounded however often someone logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_keeps_a_bounded_number_of_sessions() {
    use wxauth::domain::session::MAX_SESSIONS_PER_USER;
    let world = World::new().await;
    let mut stack = Stack::start(&world, &[("SINGLE_SESSION", "false".into())], &[]).await;
    let openid = "oMANY00000000000000000000001";
    let mut tokens = Vec::new();
    let mut refresh_tokens = Vec::new();
    for _ in 0..=MAX_SESSIONS_PER_USER {
        let (code, _) = world.wechat.issue_code_for(openid, None);
        let (status, body) = stack.log_in_with_code(&code).await;
        assert_eq!(status, 200, "{body}");
        tokens.push(body["token"].as_str().unwrap().to_owned());
        refresh_tokens.push(body["refreshToken"].as_str().unwrap().to_owned());
    }
    // The one ending soonest went (within one second, any of them).
    let mut refused = 0;
    for token in &tokens[..MAX_SESSIONS_PER_USER] {
        if stack.with_token("GET", "/session", token).await.0 == 401 {
            refused += 1;
        }
    }
    assert_eq!(refused, 1, "exactly one earlier session revoked");
    let newest = &tokens[MAX_SESSIONS_PER_USER];
    assert_eq!(stack.with_token("GET", "/session", newest).await.0, 200);
    let account = world
        .item(&wxauth_tests::world::home_pk(openid))
        .await
        .expect("account");
    assert_eq!(
        account["sessions"].as_m().unwrap().len(),
        MAX_SESSIONS_PER_USER
    );
    // Each login starts a refresh family (30 days by default): they are
    // bounded the same way, or the account item would grow with every login.
    // The family revoked goes whole: its live token's item (which holds the
    // openid) and its kept session_key.
    assert_eq!(
        account["families"].as_m().unwrap().len(),
        MAX_SESSIONS_PER_USER
    );
    let mut gone = Vec::new();
    for refresh_token in &refresh_tokens {
        if world.refresh_item(refresh_token).await.is_none() {
            gone.push(refresh_token);
        }
    }
    assert_eq!(gone.len(), 1, "exactly one earlier family revoked");
    let family = &gone[0][..24];
    let kept_key = format!("{}{family}", wxauth::domain::refresh::KEPT_KEY_PREFIX);
    assert!(
        world.item(&kept_key).await.is_none(),
        "its kept session_key"
    );
    let (status, body) = stack.refresh(gone[0]).await;
    assert_eq!(
        (status, &body["error"]),
        (401, &json!("invalid_refresh_token"))
    );
    let (status, body) = stack.refresh(&refresh_tokens[MAX_SESSIONS_PER_USER]).await;
    assert_eq!(status, 200, "{body}");
    stack.stop().await;
}

/// Revocations of any size stay within DynamoDB's 100 items per transaction,
/// and nothing leaves the account's lists without being deleted. 20 refresh
/// families of 7 live sessions each (SINGLE_SESSION=false, each refreshed 6
/// times on the fast path), then a login with one session per user: it
/// revokes 140 sessions, 20 refresh tokens and 20 kept session_keys, and logs
/// 140 `revoked` entries. Afterwards the table holds only the new login's
/// items, and a deletion leaves nothing of the person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_revokes_any_number_of_sessions_within_the_transaction_limit() {
    let world = World::new().await;
    let mut stack = Stack::start(&world, &[("SINGLE_SESSION", "false".into())], &[]).await;
    let openid = "oBOUNDS0000000000000000001";
    let mut tokens = Vec::new();
    let mut refresh_tokens = Vec::new();
    let mut logins = Vec::new();
    for _ in 0..20 {
        let (login, _) = stack.log_in(&world, openid).await;
        logins.push(login);
    }
    // Then the refreshes: their fast path prunes nothing (a login would).
    for login in &logins {
        let mut refresh = login["refreshToken"].as_str().unwrap().to_owned();
        tokens.push(login["token"].as_str().unwrap().to_owned());
        for _ in 0..6 {
            let (status, body) = stack.refresh(&refresh).await;
            assert_eq!(status, 200, "{body}");
            tokens.push(body["token"].as_str().unwrap().to_owned());
            refresh = body["refreshToken"].as_str().unwrap().to_owned();
        }
        refresh_tokens.push(refresh);
    }
    let account_pk = wxauth_tests::world::home_pk(openid);
    let account = world.item(&account_pk).await.expect("account");
    assert_eq!(account["sessions"].as_m().unwrap().len(), 140);

    let mut single = LambdaFunction::start("login", &world.function_env()).await;
    let (code, _) = world.wechat.issue_code_for(openid, None);
    let (status, _, body) = single.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "{body}\n{}", single.logs.text());
    let user_id = body["userId"].as_str().unwrap().to_owned();
    let token = body["token"].as_str().unwrap().to_owned();
    for old in tokens.iter().step_by(13) {
        assert_eq!(stack.session(old).await.0, 401);
    }
    for old in refresh_tokens.iter().take(3) {
        assert_eq!(stack.refresh(old).await.0, 401);
    }
    let account = world.item(&account_pk).await.expect("account");
    for (list, live) in [
        ("sessions", 1),
        ("families", 1),
        ("refreshTokens", 1),
        ("sessionFamilies", 1),
    ] {
        assert_eq!(account[list].as_m().unwrap().len(), live, "{list}");
    }
    // Only the new login's items are left: its session, refresh token and
    // kept key beside the account, its index and spent tokens (no openid).
    let items = world.scan(&world.table).await;
    let sessions = items
        .iter()
        .filter(|item| item["pk"].as_s().unwrap().len() == 64)
        .count();
    assert_eq!(sessions, 1, "one session item");
    let with_openid = items
        .iter()
        .filter(|item| item.contains_key("openid") && item["pk"].as_s().unwrap() != &account_pk)
        .filter(|item| {
            !item["pk"]
                .as_s()
                .unwrap()
                .starts_with(wxauth::aws::USER_PREFIX)
        })
        .count();
    assert_eq!(with_openid, 2, "the new session and its live refresh token");
    let kept_keys = items
        .iter()
        .filter(|item| {
            item["pk"]
                .as_s()
                .unwrap()
                .starts_with(wxauth::domain::refresh::KEPT_KEY_PREFIX)
        })
        .count();
    assert_eq!(kept_keys, 1);
    let (_, log, _) = admin(&world, &["log", &user_id, "--limit", "1000"]);
    let revoked = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["event"] == "revoked")
        .count();
    assert_eq!(revoked, 140, "one entry per revoked live session");

    let (status, _) = stack.with_token("DELETE", "/account", &token).await;
    assert_eq!(status, 204);
    let text = item_text(&world.scan(&world.table).await);
    assert!(!text.contains(openid), "the openid is gone: {text}");
    single.stop().await;
    stack.stop().await;
}

/// The operator tool cannot mislead: `delete` shows the account and deletes
/// nothing without `--yes` (stdin is no terminal here, so nobody can type
/// the userId); `delete` and `log` refuse to run without the log table; a
/// deletion's entry is kept as the stack keeps entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_tool_asks_before_deleting_and_needs_the_log_table() {
    let world = World::new().await;
    let mut stack = Stack::start(&world, &[("LOGIN_LOG_RETENTION_DAYS", "365".into())], &[]).await;
    let openid = "oOPERATOR0000000000000000001";
    let (login, _) = stack.log_in(&world, openid).await;
    let user_id = login["userId"].as_str().unwrap().to_owned();

    let (code, printed, stderr) = admin(&world, &["delete", &user_id]);
    assert_eq!((code, printed), (4, Value::Null), "{stderr}");
    assert!(
        stderr.contains(openid) && stderr.contains("--yes"),
        "{stderr}"
    );
    assert_eq!(admin(&world, &["show", &user_id]).0, 0, "nothing deleted");

    for args in [vec!["delete", &user_id, "--yes"], vec!["log", &user_id]] {
        let (code, _, stderr) = admin_with(&world, &args, &[]);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("LOGIN_LOG_TABLE"), "{stderr}");
    }
    assert_eq!(admin(&world, &["show", &user_id]).0, 0, "nothing deleted");

    // The operator did not set the retention: the stack's 365 days, read
    // off the user's newest entry.
    let (code, deleted, stderr) = admin(&world, &["delete", &user_id, "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(deleted["account"]["openid"], openid);
    let (_, log, _) = admin(&world, &["log", &user_id, "--limit", "1"]);
    assert_eq!(log[0]["event"], "account_deleted");
    let kept_for = log[0]["expiresAt"].as_i64().unwrap() - wxauth::domain::time::epoch_seconds();
    assert!(
        (364 * 86_400..=365 * 86_400).contains(&kept_for),
        "{kept_for}"
    );
    assert_eq!(stack.session(login["token"].as_str().unwrap()).await.0, 401);
    stack.stop().await;
}

/// What one function sent DynamoDB through `proxy`: each item it deleted
/// (on its own or in a transaction), and each item it updated with the
/// top-level attributes its expressions name.
fn writes(proxy: &wxauth_tests::proxy::DynamoDbProxy) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let key = |op: &Value| op["Key"]["pk"]["S"].as_str().unwrap_or_default().to_owned();
    let attributes = |op: &Value| {
        let names = &op["ExpressionAttributeNames"];
        let text = format!(
            "{} {}",
            op["UpdateExpression"].as_str().unwrap_or_default(),
            op["ConditionExpression"].as_str().unwrap_or_default()
        );
        let mut found: Vec<String> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '#' || c == '_' || c == ':' || c == '.'))
            .filter(|word| !word.is_empty() && !word.starts_with(':'))
            .filter_map(|word| {
                let top = word.split('.').next().unwrap_or_default();
                match top.strip_prefix('#') {
                    Some(_) => names[top].as_str().map(str::to_owned),
                    None => Some(top.to_owned()),
                }
            })
            .filter(|word| {
                !matches!(
                    word.as_str(),
                    "SET"
                        | "REMOVE"
                        | "ADD"
                        | "DELETE"
                        | "AND"
                        | "OR"
                        | "NOT"
                        | "if_not_exists"
                        | "attribute_exists"
                        | "attribute_not_exists"
                        | "size"
                ) && !word.chars().all(|c| c.is_ascii_digit())
            })
            .collect();
        found.push("pk".to_owned());
        found.sort();
        found.dedup();
        found
    };
    let mut deleted = Vec::new();
    let mut updated = Vec::new();
    for body in proxy.bodies("DeleteItem") {
        deleted.push(key(&body));
    }
    for body in proxy.bodies("UpdateItem") {
        updated.push((key(&body), attributes(&body)));
    }
    for body in proxy.bodies("TransactWriteItems") {
        for item in body["TransactItems"].as_array().into_iter().flatten() {
            if let Some(delete) = item.get("Delete") {
                deleted.push(key(delete));
            }
            if let Some(update) = item.get("Update") {
                updated.push((key(update), attributes(update)));
            }
        }
    }
    (deleted, updated)
}

/// The narrowed IAM policies of template.yaml hold for what the release
/// binaries really send: login and check-session never delete the published
/// key set or the access token (login no account either), and the account
/// updates of decrypt-phone (the phone) and check-session (a logout's
/// revocation) name only the attributes their policies list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_fits_the_functions_narrowed_policies() {
    use wxauth_tests::proxy::DynamoDbProxy;
    use wxauth_tests::template::{condition_values, iam_like};
    let world = World::new().await;
    let mut proxies = Vec::new();
    let mut functions = Vec::new();
    for binary in ["login", "decrypt-phone", "check-session"] {
        let proxy = DynamoDbProxy::start(&world.standins.dynamodb).await;
        let env: Vec<(&str, String)> = world
            .function_env()
            .into_iter()
            .map(|(name, value)| match name {
                "AWS_ENDPOINT_URL_DYNAMODB" => (name, proxy.endpoint.clone()),
                _ => (name, value),
            })
            .collect();
        functions.push(LambdaFunction::start(binary, &env).await);
        proxies.push(proxy);
    }
    let [login, phone, check] = &mut functions[..] else {
        unreachable!()
    };
    let openid = "oPOLICY00000000000000000001";
    async fn log_in(
        world: &World,
        login: &mut LambdaFunction,
        openid: &str,
    ) -> (Value, wechat_sim::Issued) {
        let (code, issued) = world.wechat.issue_code_for(openid, None);
        let (status, _, body) = login.call(login_event(&code).build()).await;
        assert_eq!(status, 200, "{body}");
        (body, issued)
    }
    let (first, _) = log_in(&world, login, openid).await;
    let (second, issued) = log_in(&world, login, openid).await;
    let refresh = |token: &Value| {
        HttpEvent::new("POST", "/refresh")
            .json(&json!({"refreshToken": token}))
            .build()
    };
    let (status, _, refreshed) = login.call(refresh(&second["refreshToken"])).await;
    assert_eq!(status, 200, "{refreshed}");
    let (status, _, _) = login.call(refresh(&second["refreshToken"])).await;
    assert_eq!(status, 200, "a retry within the grace");
    let (status, _, _) = login.call(refresh(&first["refreshToken"])).await;
    assert_eq!(status, 401, "revoked by the second login");
    let token = second["token"].as_str().unwrap();
    let payload = encrypt_for(&issued, &phone_plaintext(APPID, "13700001111"));
    let (status, _, _) = phone
        .call(
            HttpEvent::new("POST", "/phone")
                .bearer(token)
                .json(&payload)
                .build(),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = check
        .call(HttpEvent::new("DELETE", "/session").bearer(token).build())
        .await;
    assert_eq!(status, 204);
    let (third, _) = log_in(&world, login, openid).await;
    let (status, _, _) = check
        .call(
            HttpEvent::new("DELETE", "/account")
                .bearer(third["token"].as_str().unwrap())
                .build(),
        )
        .await;
    assert_eq!(status, 204);

    let [login_proxy, phone_proxy, check_proxy] = &proxies[..] else {
        unreachable!()
    };
    for (function, proxy) in [
        ("LoginFunction", login_proxy),
        ("CheckSessionFunction", check_proxy),
    ] {
        let excluded = condition_values(function, "dynamodb:DeleteItem", "dynamodb:LeadingKeys");
        assert!(
            excluded.contains(&"signingkeys#*".to_owned()),
            "{function}: {excluded:?}"
        );
        let (deleted, _) = writes(proxy);
        assert!(!deleted.is_empty(), "{function} deleted something");
        for key in &deleted {
            assert!(
                !excluded.iter().any(|pattern| iam_like(pattern, key)),
                "{function} deleted {key}, which its policy excludes"
            );
        }
    }
    for (function, proxy) in [
        ("DecryptPhoneFunction", phone_proxy),
        ("CheckSessionFunction", check_proxy),
    ] {
        let allowed = condition_values(function, "\"account#*\"", "dynamodb:Attributes");
        let (_, updated) = writes(proxy);
        // An account's items: its home and identities, under either prefix.
        let accounts: Vec<_> = updated
            .iter()
            .filter(|(key, _)| {
                key.starts_with(wxauth::aws::ACCOUNT_PREFIX)
                    || key.starts_with(wxauth::aws::IDENTITY_PREFIX)
            })
            .collect();
        assert!(!accounts.is_empty(), "{function} updated an account");
        for (key, attributes) in accounts {
            for attribute in attributes {
                assert!(
                    allowed.contains(attribute),
                    "{function} updated {attribute} of {key}; its policy allows {allowed:?}"
                );
            }
        }
    }
    for function in &mut functions {
        function.stop().await;
    }
}
