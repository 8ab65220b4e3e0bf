//! The upgrade to several apps (../shared/spec/API.md, "Several WeChat apps",
//! "Upgrade"): tables written by the release before them keep working under
//! this one, with `WECHAT_APPS` listing the old appid first. The items are
//! that release's own (`tests/fixtures/single-app.json`, written by its
//! binaries through `tests/src/bin/single_app_fixture.rs`), loaded as if
//! written just now: every time in them moved forward by the fixture's age,
//! and its one JWT signed again with the same key and claims, moved likewise.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use wxauth::domain::jwt::{Claims, SigningKey, sign};
use wxauth::domain::time::epoch_seconds;
use wxauth_tests::admin::admin;
use wxauth_tests::fixture::{Item, item_from_json, shifted};
use wxauth_tests::invoke::login_event_in;
use wxauth_tests::stack::Stack;
use wxauth_tests::world::{APPID, SECOND_APPID, World};

fn fixture() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/single-app.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the fixture")).expect("JSON")
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field}: {value}"))
}

async fn put(world: &World, table: &str, item: Item) {
    world
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .expect("PutItem on DynamoDB Local");
}

/// The fixture's JWT, its times moved by `age`, signed again with its key.
fn moved_jwt(jwt: &str, key: &SigningKey, age: i64) -> String {
    let claims = jwt.split('.').nth(1).expect("a JWT");
    let mut claims: Claims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).expect("base64url"))
            .expect("claims");
    claims.iat += age;
    claims.exp += age;
    sign(key, &claims).expect("signed")
}

/// A legacy account like the fixture's first, for another person: the
/// same item shapes under another openid, unionid and userId, with no
/// session (one login's worth of the old release's writes, renamed).
fn another_legacy_account(items: &[Item], openid: &str, unionid: &str, user_id: &str) -> Vec<Item> {
    use aws_sdk_dynamodb::types::AttributeValue::{M, S};
    let account = items
        .iter()
        .find(|item| {
            item["pk"]
                .as_s()
                .is_ok_and(|pk| pk.starts_with("account#oLEGACYU"))
        })
        .expect("the legacy account");
    let mut copy = account.clone();
    copy.insert("pk".into(), S(format!("account#{openid}")));
    copy.insert("openid".into(), S(openid.into()));
    copy.insert("unionid".into(), S(unionid.into()));
    copy.insert("userId".into(), S(user_id.into()));
    for map in ["sessions", "families", "refreshTokens", "sessionFamilies"] {
        copy.insert(map.into(), M(Default::default()));
    }
    let index = Item::from([
        ("pk".into(), S(format!("user#{user_id}"))),
        ("openid".into(), S(openid.into())),
    ]);
    vec![copy, index]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_app_table_keeps_working_after_the_upgrade() {
    let fixture = fixture();
    assert_eq!(
        text(&fixture, "appid"),
        APPID,
        "the old appid is listed first"
    );
    let world = World::several_apps().await;
    let age = epoch_seconds() - fixture["capturedAt"].as_i64().expect("capturedAt");
    let items: Vec<Item> = fixture["sessionTable"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| shifted(&item_from_json(item), age))
        .collect();
    for item in items.iter().cloned().chain(another_legacy_account(
        &items,
        "oLEGACYV000000000000000001",
        "uLEGACYVUNION0000000000001",
        "u_bGVnYWN5LXZ2di12dnZ2dg",
    )) {
        put(&world, &world.table, item).await;
    }
    for entry in fixture["loginLogTable"].as_array().expect("entries") {
        put(
            &world,
            &world.log_table,
            shifted(&item_from_json(entry), age),
        )
        .await;
    }
    let key_secret = text(&fixture, "signingKeySecret");
    let key = SigningKey::from_secret_string(key_secret).expect("the fixture's key");
    let signing_arn = world.standins.create_secret(key_secret).await;
    let issuer = ("ISSUER", text(&fixture, "issuer").to_owned());
    let mut stack =
        Stack::start(&world, &[issuer], &[("SIGNING_KEY_SECRET_ID", signing_arn)]).await;

    let (with, without) = (&fixture["withUnionid"], &fixture["withoutUnionid"]);
    let jwt = moved_jwt(text(&with["login"], "token"), &key, age);
    let opaque = text(&without["login"], "token");
    // Old sessions (JWT and opaque) answer, as the default app's; the
    // authorizer, which lists no apps, leaves their app out.
    for (token, login) in [(jwt.as_str(), &with["login"]), (opaque, &without["login"])] {
        let (status, session) = stack.session(token).await;
        assert_eq!(status, 200, "{session}");
        assert_eq!(
            (text(&session, "userId"), text(&session, "appid")),
            (text(login, "userId"), APPID)
        );
        let allowed = stack.authorized(token).await;
        assert_eq!(allowed["isAuthorized"], true, "{allowed}");
        assert!(allowed["context"].get("appid").is_none(), "{allowed}");
    }
    let (status, account) = stack.with_token("GET", "/account", &jwt).await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["purePhoneNumber"], "13811112222");
    assert_eq!(account["apps"][0]["appid"], APPID, "{account}");

    // Old refresh tokens refresh, in both modes, into sessions of the default app.
    for login in [&with["login"], &without["login"]] {
        let (status, refreshed) = stack.refresh(text(login, "refreshToken")).await;
        assert_eq!(status, 200, "{refreshed}");
        assert_eq!(
            (text(&refreshed, "userId"), text(&refreshed, "appid")),
            (text(login, "userId"), APPID)
        );
        assert_eq!(stack.session(text(&refreshed, "token")).await.0, 200);
    }

    // An old account logs in again through its app: the same account.
    let (code, _) = world
        .wechat
        .issue_code_in(APPID, text(without, "openid"), None);
    let (status, _, again) = stack.login.call(login_event_in(APPID, &code).build()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (text(&again, "userId"), again["newUser"].as_bool()),
        (text(&without["login"], "userId"), Some(false))
    );

    // An old account that logs in through its own app claims its unionid
    // then (the renamed one, here)...
    let (code, _) = world.wechat.issue_code_in(
        APPID,
        "oLEGACYV000000000000000001",
        Some("uLEGACYVUNION0000000000001"),
    );
    assert_eq!(
        stack
            .login
            .call(login_event_in(APPID, &code).build())
            .await
            .0,
        200
    );
    // ...and the upgrade's one operator step claims the others', so that a
    // second app's login joins the account instead of making one.
    let (code, claimed, stderr) = admin(&world, &["claim-unionids"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        claimed,
        json!({"claimed": 1, "alreadyClaimed": 1, "heldByAnotherAccount": 0})
    );
    let second = |openid: &str, unionid: &str| {
        world
            .wechat
            .issue_code_in(SECOND_APPID, openid, Some(unionid))
            .0
    };
    for (person, openid) in [
        (with, "oSECONDU00000000000000001"),
        (
            &json!({"unionid": "uLEGACYVUNION0000000000001"}),
            "oSECONDV00000000000000001",
        ),
    ] {
        let code = second(openid, text(person, "unionid"));
        let (status, _, linked) = stack
            .login
            .call(login_event_in(SECOND_APPID, &code).build())
            .await;
        assert_eq!(
            (status, linked["newUser"].as_bool()),
            (200, Some(false)),
            "{linked}"
        );
    }
    let code = second("oSECONDU00000000000000001", text(with, "unionid"));
    let (status, _, linked) = stack
        .login
        .call(login_event_in(SECOND_APPID, &code).build())
        .await;
    assert_eq!(status, 200, "{linked}");
    assert_eq!(text(&linked, "userId"), text(&with["login"], "userId"));
    let (code, again, _) = admin(&world, &["claim-unionids"]);
    assert_eq!(
        (code, again),
        (
            0,
            json!({"claimed": 0, "alreadyClaimed": 2, "heldByAnotherAccount": 0})
        )
    );
    let (status, account) = stack
        .with_token("GET", "/account", text(&linked, "token"))
        .await;
    assert_eq!(status, 200);
    let apps: Vec<&str> = account["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|app| text(app, "appid"))
        .collect();
    assert_eq!(apps, [APPID, SECOND_APPID]);

    // The operator's view and the old log entries, under the new release.
    let user_id = text(&with["login"], "userId");
    let (code, shown, _) = admin(&world, &["show", text(with, "openid")]);
    assert_eq!((code, text(&shown, "userId")), (0, user_id));
    let (_, log, _) = admin(&world, &["log", user_id]);
    let events: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| text(e, "event"))
        .collect();
    assert!(
        events.contains(&"app_linked") && events.contains(&"login"),
        "{events:?}"
    );

    // Deleting an old account removes it and what the upgrade added to it:
    // nothing is left that names the person (a spent refresh token's item,
    // which names only the userId, lives out its expiry, as it always did).
    let (status, _) = stack
        .with_token("DELETE", "/account", text(&linked, "token"))
        .await;
    assert_eq!(status, 204);
    let left: Vec<String> = world
        .scan(&world.table)
        .await
        .iter()
        .map(|item| format!("{item:?}"))
        .filter(|item| {
            item.contains(text(with, "openid"))
                || item.contains(text(with, "unionid"))
                || item.contains("oSECONDU")
                || (item.contains(user_id) && !item.contains("refresh#"))
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    stack.stop().await;
}
