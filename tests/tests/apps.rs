//! Several WeChat apps, one account (../shared/spec/API.md, "Several WeChat
//! apps"): every rule through the release binaries, on DynamoDB Local and
//! moto, with the simulator serving two mini-programs and an `oauth` app
//! bound to one Open Platform account. The operator's commands docs/operations.md
//! shows for them (show by identity and unionid, merge) run here as the
//! operator runs them; claim-unionids runs in upgrade.rs.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};
use wechat_sim::OAuthUser;
use wxauth_tests::admin::admin;
use wxauth_tests::events::HttpEvent;
use wxauth_tests::invoke::login_event_in;
use wxauth_tests::logs::{has_metric, metric_records};
use wxauth_tests::runtime::LambdaFunction;
use wxauth_tests::stack::Stack;
use wxauth_tests::world::{APPID, OAUTH_APPID, SECOND_APPID, World, encrypt_for, phone_plaintext};

/// One person's openid in `app`, and their unionid: what WeChat gives them.
struct Person {
    name: &'static str,
}

impl Person {
    fn openid(&self, app: &str) -> String {
        format!("o{}{}", &app[2..8], self.name)
    }

    fn unionid(&self) -> String {
        format!("uUNION{}", self.name)
    }
}

/// A mini-program code of `app` for `person`, bringing their unionid.
fn mini_code(world: &World, app: &str, person: &Person) -> String {
    let unionid = person.unionid();
    world
        .wechat
        .issue_code_in(app, &person.openid(app), Some(&unionid))
        .0
}

/// An OAuth code of the `oauth` app for `person`: scope `snsapi_userinfo`,
/// the unionid only from `sns/userinfo` (as WeChat may answer).
fn oauth_code(world: &World, person: &Person) -> String {
    world.wechat.issue_oauth_code(
        OAUTH_APPID,
        OAuthUser {
            openid: person.openid(OAUTH_APPID),
            unionid: Some(person.unionid()),
            scope: "snsapi_userinfo".into(),
            unionid_in_token: false,
        },
    )
}

async fn log_in(stack: &mut Stack, app: &str, code: &str) -> (u16, Value) {
    let (status, _, body) = stack.login.call(login_event_in(app, code).build()).await;
    (status, body)
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field}: {value}"))
}

/// The login log of `user_id`, newest first, as the operator reads it.
fn log_of(world: &World, user_id: &str) -> Vec<Value> {
    let (code, entries, stderr) = admin(world, &["log", user_id]);
    assert_eq!(code, 0, "{stderr}");
    entries.as_array().cloned().unwrap_or_default()
}

fn events(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| text(e, "event")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_is_one_account_across_every_app() {
    let world = World::several_apps().await;
    let mut stack = Stack::start(&world, &[], &[]).await;
    let alice = Person { name: "ALICE" };

    let (status, in_a) = log_in(&mut stack, APPID, &mini_code(&world, APPID, &alice)).await;
    assert_eq!(status, 200, "{in_a}");
    assert_eq!(
        (in_a["newUser"].as_bool(), text(&in_a, "appid")),
        (Some(true), APPID)
    );
    let user_id = text(&in_a, "userId").to_owned();

    // A second mini-program: the same person, by unionid.
    let code = mini_code(&world, SECOND_APPID, &alice);
    let (status, in_b) = log_in(&mut stack, SECOND_APPID, &code).await;
    assert_eq!(status, 200, "{in_b}");
    assert_eq!(
        (
            text(&in_b, "userId"),
            in_b["newUser"].as_bool(),
            text(&in_b, "appid"),
            text(&in_b, "openid"),
            text(&in_b, "unionid")
        ),
        (
            user_id.as_str(),
            Some(false),
            SECOND_APPID,
            alice.openid(SECOND_APPID).as_str(),
            alice.unionid().as_str()
        )
    );
    // The official account's H5 pages: the unionid comes from sns/userinfo.
    let (status, in_c) = log_in(&mut stack, OAUTH_APPID, &oauth_code(&world, &alice)).await;
    assert_eq!(status, 200, "{in_c}");
    assert_eq!(
        (text(&in_c, "userId"), text(&in_c, "appid")),
        (user_id.as_str(), OAUTH_APPID)
    );
    assert_eq!(world.wechat.oauth_and_risk_calls(), (1, 1, 0));

    // Every session answers with its own app and openid; a login through one
    // app left the person's sessions in the others.
    for (login, app) in [(&in_a, APPID), (&in_b, SECOND_APPID), (&in_c, OAUTH_APPID)] {
        let (status, session) = stack.session(text(login, "token")).await;
        assert_eq!(status, 200, "{session}");
        assert_eq!(
            (text(&session, "appid"), text(&session, "openid")),
            (app, alice.openid(app).as_str())
        );
        let allowed = stack.authorized(text(login, "token")).await;
        assert_eq!(allowed["context"]["appid"], app, "{allowed}");
        let mut me = HttpEvent::new("GET", "/me").build();
        me["requestContext"]["authorizer"] = json!({"lambda": allowed["context"]});
        let (status, _, me) = stack.check.call(me).await;
        assert_eq!((status, me["appid"].as_str()), (200, Some(app)));
    }

    // The account lists the three, oldest first; its openid is the caller's app's.
    let (status, account) = stack
        .with_token("GET", "/account", text(&in_b, "token"))
        .await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(text(&account, "openid"), alice.openid(SECOND_APPID));
    let apps = account["apps"].as_array().unwrap();
    let linked_at: Vec<i64> = apps
        .iter()
        .map(|app| app["linkedAt"].as_i64().unwrap())
        .collect();
    assert!(
        linked_at.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {apps:?}"
    );
    assert_eq!(
        text(&apps[0], "appid"),
        APPID,
        "the identity that made the account"
    );
    let listed: HashSet<(String, String)> = apps
        .iter()
        .map(|app| {
            (
                text(app, "appid").to_owned(),
                text(app, "openid").to_owned(),
            )
        })
        .collect();
    let expected: HashSet<(String, String)> = [APPID, SECOND_APPID, OAUTH_APPID]
        .iter()
        .map(|app| ((*app).to_owned(), alice.openid(app)))
        .collect();
    assert_eq!(listed, expected);

    // The operator finds it by any identity, by the unionid, by the userId.
    for who in [
        format!("{SECOND_APPID}:{}", alice.openid(SECOND_APPID)),
        format!("{OAUTH_APPID}:{}", alice.openid(OAUTH_APPID)),
        alice.unionid(),
        alice.openid(APPID),
        user_id.clone(),
    ] {
        let (code, shown, stderr) = admin(&world, &["show", &who]);
        assert_eq!(
            (code, shown["userId"].as_str()),
            (0, Some(user_id.as_str())),
            "{who}: {stderr}"
        );
        assert_eq!(shown["apps"].as_array().map(Vec::len), Some(3));
    }

    // The log: each login with its app, two apps linked.
    let entries = log_of(&world, &user_id);
    assert_eq!(
        events(&entries)
            .iter()
            .filter(|e| **e == "app_linked")
            .count(),
        2,
        "{entries:?}"
    );
    let login_apps: HashSet<&str> = entries
        .iter()
        .filter(|e| e["event"] == "login")
        .map(|e| text(e, "appid"))
        .collect();
    assert_eq!(
        login_apps,
        HashSet::from([APPID, SECOND_APPID, OAUTH_APPID])
    );

    let logs = stack.stop().await;
    let records = metric_records(&logs);
    assert!(has_metric(&records, "AppLinked", &[("Function", "login")]));
    assert!(has_metric(
        &records,
        "Logins",
        &[
            ("Function", "login"),
            ("App", OAUTH_APPID),
            ("Outcome", "ok")
        ]
    ));
    // WeChat's user access and refresh tokens go nowhere but sns/userinfo.
    assert!(!logs.contains("USER-") && !logs.contains("REFRESH-"));
    for answer in [&in_a, &in_b, &in_c] {
        assert!(!answer.to_string().contains("USER-"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_session_is_refused_where_a_mini_program_session_is_needed() {
    let world = World::several_apps().await;
    let mut stack = Stack::start(&world, &[], &[]).await;
    // scope snsapi_base: no unionid, and no sns/userinfo call for it.
    let code = world.wechat.issue_oauth_code(
        OAUTH_APPID,
        OAuthUser {
            openid: "oOAUTHONLY000000000000000001".into(),
            unionid: None,
            scope: "snsapi_base".into(),
            unionid_in_token: false,
        },
    );
    let (status, login) = log_in(&mut stack, OAUTH_APPID, &code).await;
    assert_eq!(status, 200, "{login}");
    assert!(login.get("unionid").is_none(), "{login}");
    assert_eq!(world.wechat.oauth_and_risk_calls(), (1, 0, 0));
    let token = text(&login, "token").to_owned();
    let ciphertext =
        json!({"encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "AAAAAAAAAAAAAAAAAAAAAA=="});
    for (method, path, body) in [
        ("POST", "/phone", json!({"code": "phone-13800138000"})),
        ("POST", "/phone", ciphertext.clone()),
        ("POST", "/open-data", ciphertext),
        (
            "POST",
            "/session",
            json!({"rawData": "{}", "signature": "0".repeat(40)}),
        ),
    ] {
        let (status, body) = stack.with_json(method, path, &token, &body).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("unsupported_for_app")),
            "{method} {path}"
        );
    }
    let (status, _, body) = stack
        .check
        .call(
            HttpEvent::new("GET", "/session")
                .bearer(&token)
                .query("verify=wechat")
                .build(),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_for_app"))
    );
    // The token check comes first; the plain session check answers.
    let (status, body) = stack.with_json("POST", "/phone", "", &json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, session) = stack.session(&token).await;
    assert_eq!((status, text(&session, "appid")), (200, OAUTH_APPID));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_names_one_of_the_apps() {
    let world = World::several_apps().await;
    let mut stack = Stack::start(&world, &[], &[]).await;
    let bob = Person { name: "BOB" };
    let code = mini_code(&world, APPID, &bob);
    for (appid, status, error) in [
        (json!("wx9999999999999999"), 400, "unknown_app"),
        (json!(7), 400, "invalid_request"),
        // Another app's code is no code of this one: WeChat answers 40029.
        (json!(SECOND_APPID), 401, "invalid_code"),
    ] {
        let event = HttpEvent::new("POST", "/login")
            .json(&json!({"code": code, "appid": appid}))
            .build();
        let (got, _, body) = stack.login.call(event).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{appid}"
        );
    }
    // No appid: the default app; the code, unspent by the refusals above, works.
    let event = HttpEvent::new("POST", "/login")
        .json(&json!({"code": code}))
        .build();
    let (status, _, body) = stack.login.call(event).await;
    assert_eq!(
        (status, body["appid"].as_str()),
        (200, Some(APPID)),
        "{body}"
    );
    let logs = stack.stop().await;
    assert!(has_metric(
        &metric_records(&logs),
        "Logins",
        &[("App", "unknown"), ("Outcome", "unknown_app")]
    ));
}

/// An app used before it was bound to the Open Platform account: its users
/// have accounts without a unionid. Once bound, their logins bring the
/// unionid another account (made through a bound app) holds: nothing is
/// linked, both accounts log the conflict, the operator's merge resolves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unionid_held_elsewhere_is_a_conflict_that_a_merge_resolves() {
    let world = World::several_apps().await;
    let mut stack = Stack::start(&world, &[], &[]).await;
    let carol = Person { name: "CAROL" };
    let early_code = world
        .wechat
        .issue_code_in(SECOND_APPID, &carol.openid(SECOND_APPID), None)
        .0;
    let (_, early) = log_in(&mut stack, SECOND_APPID, &early_code).await;
    let (_, owner) = log_in(&mut stack, APPID, &mini_code(&world, APPID, &carol)).await;
    let (early_id, owner_id) = (
        text(&early, "userId").to_owned(),
        text(&owner, "userId").to_owned(),
    );
    assert_ne!(early_id, owner_id);

    let (status, conflicted) = log_in(
        &mut stack,
        SECOND_APPID,
        &mini_code(&world, SECOND_APPID, &carol),
    )
    .await;
    assert_eq!(status, 200, "{conflicted}");
    assert_eq!(text(&conflicted, "userId"), early_id);
    assert_eq!(conflicted["newUser"], false);
    // Never the other account's unionid: not in the answer, the session, the context.
    assert!(conflicted.get("unionid").is_none(), "{conflicted}");
    let token = text(&conflicted, "token").to_owned();
    let (_, session) = stack.session(&token).await;
    assert!(session.get("unionid").is_none(), "{session}");
    let allowed = stack.authorized(&token).await;
    assert!(allowed["context"].get("unionid").is_none(), "{allowed}");
    for (user, other) in [(&early_id, &owner_id), (&owner_id, &early_id)] {
        let conflicts: Vec<Value> = log_of(&world, user)
            .into_iter()
            .filter(|e| e["event"] == "account_conflict")
            .collect();
        assert_eq!(conflicts.len(), 1, "{user}: {conflicts:?}");
        assert_eq!(text(&conflicts[0], "otherUserId"), other.as_str());
    }

    // The merge: refused for nobody, for one account, for two people.
    let (code, _, _) = admin(&world, &["merge", &owner_id, "u_AAAAAAAAAAAAAAAAAAAAAA"]);
    assert_eq!(code, 1);
    let (code, _, _) = admin(&world, &["merge", &owner_id, &owner_id]);
    assert_eq!(code, 2);
    let dave = Person { name: "DAVE" };
    let (_, other_person) = log_in(&mut stack, APPID, &mini_code(&world, APPID, &dave)).await;
    let (code, _, stderr) = admin(&world, &["merge", &owner_id, text(&other_person, "userId")]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("different unionids"), "{stderr}");

    let (code, merged, stderr) = admin(&world, &["merge", &owner_id, &early_id]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(text(&merged, "userId"), owner_id);
    assert_eq!(merged["apps"].as_array().map(Vec::len), Some(2), "{merged}");
    // The merged account's tokens are refused; it is gone; both logs say so.
    assert_eq!(stack.session(&token).await.0, 401);
    assert_eq!(admin(&world, &["show", &early_id]).0, 1);
    for (user, other) in [(&early_id, &owner_id), (&owner_id, &early_id)] {
        let merges: Vec<Value> = log_of(&world, user)
            .into_iter()
            .filter(|e| e["event"] == "account_merged")
            .collect();
        assert_eq!(merges.len(), 1, "{user}");
        assert_eq!(text(&merges[0], "otherUserId"), other.as_str());
    }
    // From now on the second app's logins are the surviving account's.
    let (status, after) = log_in(
        &mut stack,
        SECOND_APPID,
        &mini_code(&world, SECOND_APPID, &carol),
    )
    .await;
    assert_eq!((status, text(&after, "userId")), (200, owner_id.as_str()));
    let logs = stack.stop().await;
    assert!(has_metric(
        &metric_records(&logs),
        "AccountConflicts",
        &[("Function", "login")]
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_removes_every_identity() {
    let world = World::several_apps().await;
    let mut stack = Stack::start(&world, &[], &[]).await;
    let erin = Person { name: "ERIN" };
    let (_, in_a) = log_in(&mut stack, APPID, &mini_code(&world, APPID, &erin)).await;
    let (_, in_b) = log_in(
        &mut stack,
        SECOND_APPID,
        &mini_code(&world, SECOND_APPID, &erin),
    )
    .await;
    let (_, in_c) = log_in(&mut stack, OAUTH_APPID, &oauth_code(&world, &erin)).await;
    let user_id = text(&in_a, "userId").to_owned();
    let (status, _) = stack
        .with_token("DELETE", "/account", text(&in_c, "token"))
        .await;
    assert_eq!(status, 204);
    for login in [&in_a, &in_b, &in_c] {
        assert_eq!(stack.session(text(login, "token")).await.0, 401);
        assert!(!stack.allowed(text(login, "token")).await);
    }
    // Nothing of the person is left in the session table.
    let leftovers: Vec<_> = world
        .scan(&world.table)
        .await
        .into_iter()
        .filter(|item| {
            format!("{item:?}").contains(&user_id) || format!("{item:?}").contains("ERIN")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Every app's next login makes a new account (and links the others to it).
    let (_, again_b) = log_in(
        &mut stack,
        SECOND_APPID,
        &mini_code(&world, SECOND_APPID, &erin),
    )
    .await;
    assert_eq!(again_b["newUser"], true);
    assert_ne!(text(&again_b, "userId"), user_id);
    let (_, again_a) = log_in(&mut stack, APPID, &mini_code(&world, APPID, &erin)).await;
    assert_eq!(
        (again_a["newUser"].as_bool(), text(&again_a, "userId")),
        (Some(false), text(&again_b, "userId"))
    );
    stack.stop().await;
}

/// Concurrent first logins of one person through two apps: one account,
/// one `newUser: true`, every identity on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_logins_from_two_apps_make_one_account() {
    const PER_APP: usize = 6;
    let world = Arc::new(World::several_apps().await);
    let frank = Person { name: "FRANK" };
    let mut tasks = Vec::new();
    for i in 0..2 * PER_APP {
        let world = Arc::clone(&world);
        let app = if i % 2 == 0 { APPID } else { SECOND_APPID };
        let code = mini_code(&world, app, &frank);
        tasks.push(tokio::spawn(async move {
            let login = world.login().await;
            let answer = wxauth_tests::invoke::call(&login, login_event_in(app, &code)).await;
            assert_eq!(answer.status, 200, "{}", answer.raw);
            answer.body
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("login"));
    }
    let users: HashSet<&str> = answers.iter().map(|a| text(a, "userId")).collect();
    assert_eq!(users.len(), 1, "{answers:?}");
    let new_users = answers.iter().filter(|a| a["newUser"] == true).count();
    assert_eq!(new_users, 1, "{answers:?}");
    let user_id = users.into_iter().next().unwrap_or_default().to_owned();
    let (_, shown, _) = admin(&world, &["show", &user_id]);
    assert_eq!(shown["apps"].as_array().map(Vec::len), Some(2), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mini_program_has_its_own_access_token_and_watermark() {
    let world = World::several_apps().await;
    let mut stack = Stack::start(&world, &[], &[]).await;
    let gina = Person { name: "GINA" };
    let openid = gina.openid(SECOND_APPID);
    let (code, issued) = world
        .wechat
        .issue_code_in(SECOND_APPID, &openid, Some(&gina.unionid()));
    let (_, login) = log_in(&mut stack, SECOND_APPID, &code).await;
    let token = text(&login, "token").to_owned();
    let phone_code = world.wechat.issue_phone_code(&openid, "13912345678");
    let (status, phone) = stack
        .with_json("POST", "/phone", &token, &json!({"code": phone_code}))
        .await;
    assert_eq!(
        (status, text(&phone, "purePhoneNumber")),
        (200, "13912345678")
    );
    assert_eq!(world.wechat.stable_token_calls_of(SECOND_APPID), (1, 0));
    assert_eq!(world.wechat.stable_token_calls_of(APPID), (0, 0));
    let (status, _, body) = stack
        .check
        .call(
            HttpEvent::new("GET", "/session")
                .bearer(&token)
                .query("verify=wechat")
                .build(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The watermark must name the session's app.
    for (watermark, status) in [(APPID, 422), (SECOND_APPID, 200)] {
        let payload = encrypt_for(&issued, &phone_plaintext(watermark, "13800138000"));
        let (got, body) = stack.with_json("POST", "/phone", &token, &payload).await;
        assert_eq!(got, status, "watermark {watermark}: {body}");
    }
    stack.stop().await;
}

/// Removing an app from `WECHAT_APPS` ends its sessions and refresh tokens
/// in the functions that list apps; the authorizer lists none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_no_longer_listed_ends_its_sessions() {
    let world = World::several_apps().await;
    let mut stack = Stack::start(&world, &[], &[]).await;
    let hugo = Person { name: "HUGO" };
    let (_, login) = log_in(
        &mut stack,
        SECOND_APPID,
        &mini_code(&world, SECOND_APPID, &hugo),
    )
    .await;
    let (token, refresh) = (
        text(&login, "token").to_owned(),
        text(&login, "refreshToken").to_owned(),
    );
    // A refresh keeps the app.
    let (status, refreshed) = stack.refresh(&refresh).await;
    assert_eq!(
        (status, text(&refreshed, "appid")),
        (200, SECOND_APPID),
        "{refreshed}"
    );
    stack.stop().await;

    let without_b: Vec<(&'static str, String)> = world
        .function_env()
        .into_iter()
        .map(|(name, value)| match name {
            "WECHAT_APPS" => (name, format!("{APPID},{OAUTH_APPID}:oauth")),
            _ => (name, value),
        })
        .collect();
    let mut narrowed = Stack::start_with(without_b, &[], &[]).await;
    let (status, body) = narrowed.session(&token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, body) = narrowed.refresh(text(&refreshed, "refreshToken")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_refresh_token"))
    );
    let allowed = narrowed.authorized(&token).await;
    assert_eq!(allowed["context"]["appid"], SECOND_APPID, "{allowed}");
    narrowed.stop().await;
}

/// The start-up errors the apps can make, each naming its variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_app_list_stops_start_up_and_is_named() {
    let world = World::several_apps().await;
    let with = |extra: &[(&'static str, &str)]| {
        let mut env = world.function_env();
        for (name, value) in extra {
            env.retain(|(n, _)| n != name);
            env.push((name, (*value).to_owned()));
        }
        env
    };
    let one_secret = world.standins.create_secret("only-one-appsecret").await;
    for (binary, env, named) in [
        ("login", with(&[("WECHAT_APPID", APPID)]), "WECHAT_APPS"),
        (
            "decrypt-phone",
            with(&[("WECHAT_APPS", "wx123")]),
            "WECHAT_APPS",
        ),
        (
            "check-session",
            with(&[("WECHAT_APPS", &format!("{APPID}:web"))]),
            "WECHAT_APPS",
        ),
        (
            "login",
            with(&[("WECHAT_APPS", &format!("{APPID},{APPID}"))]),
            "WECHAT_APPS",
        ),
        (
            "login",
            with(&[("RISK_REJECT_RANK", "9")]),
            "RISK_REJECT_RANK",
        ),
        // A bare appsecret is the first app's: the second has none.
        (
            "login",
            with(&[("WECHAT_SECRET_ID", &one_secret)]),
            SECOND_APPID,
        ),
    ] {
        let mut function = LambdaFunction::start(binary, &env).await;
        let status = function
            .wait_exit(std::time::Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{binary} started with a bad {named}"));
        assert!(!status.success());
        let logs = function.logs.text();
        assert!(logs.contains(named), "{binary}: {logs}");
    }
}

/// What a login reads and writes, per case, counted at DynamoDB: one read
/// (a BatchGetItem) before one transaction in every case; through a linked
/// app, one write more than through the first (the home's last login); a
/// first login through a linked app, no more than a returning login plus
/// the identity's item. The figures are docs/performance.md's table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_login_reads_and_writes_per_case() {
    use wxauth::aws::DynamoSessionStore;
    use wxauth_tests::proxy::DynamoDbProxy;
    use wxauth_tests::standins::StandIns;
    use wxauth_tests::world::login_with;

    let world = World::several_apps().await;
    let proxy = DynamoDbProxy::start(&world.standins.dynamodb).await;
    let sdk = StandIns::sdk_config(&proxy.endpoint).await;
    let login = login_with(
        DynamoSessionStore::new(&sdk, world.table.clone())
            .with_login_log(Some(world.log_table.clone())),
        &world.wechat.base,
        world.secrets().await,
        world.parsed_apps(),
    );
    let iris = Person { name: "IRIS" };
    // (case, app, items written by its transaction, of which puts, updates, deletes)
    let mut rows: Vec<(&str, usize, [usize; 3])> = Vec::new();
    for (case, app) in [
        ("first login (creates the account)", APPID),
        ("returning login, first app", APPID),
        ("first login through a linked app", SECOND_APPID),
        ("returning login, linked app", SECOND_APPID),
    ] {
        let reads = proxy.calls("BatchGetItem") + proxy.calls("GetItem");
        let transactions = proxy.bodies("TransactWriteItems").len();
        let answer =
            wxauth_tests::invoke::call(&login, login_event_in(app, &mini_code(&world, app, &iris)))
                .await;
        assert_eq!(answer.status, 200, "{}", answer.raw);
        assert_eq!(
            proxy.calls("BatchGetItem") + proxy.calls("GetItem") - reads,
            1,
            "{case}: one read"
        );
        let bodies = proxy.bodies("TransactWriteItems");
        assert_eq!(bodies.len(), transactions + 1, "{case}: one transaction");
        let items = bodies[transactions]["TransactItems"]
            .as_array()
            .unwrap()
            .clone();
        let kind = |name: &str| items.iter().filter(|item| item.get(name).is_some()).count();
        rows.push((
            case,
            items.len(),
            [kind("Put"), kind("Update"), kind("Delete")],
        ));
    }
    for (case, total, [puts, updates, deletes]) in &rows {
        println!("{case}: {total} items ({puts} puts, {updates} updates, {deletes} deletes)");
    }
    let [created, returning, linking, linked] = [rows[0].1, rows[1].1, rows[2].1, rows[3].1];
    // The same revocations (the identity's previous session and its family),
    // and one update more: the home's last login.
    assert_eq!(linked, returning + 1, "{rows:?}");
    assert_eq!(
        rows[3].2[1],
        rows[1].2[1] + 1,
        "the one more is an update: {rows:?}"
    );
    assert!(linking <= returning + 1, "{rows:?}");
    assert!(created <= linking, "{rows:?}");
}
