//! Tokens that travel (../shared/spec/API.md, "Refresh tokens" and "JWT access
//! tokens"): every row through the release binaries under the Lambda Runtime
//! API, on DynamoDB Local and moto. Time is never waited for: an item is aged
//! in the table instead (its `spentAt` or `expiresAt` moved into the past),
//! which is what the passing of time does to it.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use wxauth::domain::time::epoch_seconds;
use wxauth_tests::events::HttpEvent;
use wxauth_tests::logs::{has_metric, metric_records};
use wxauth_tests::rotation::{UNROTATED_SECRET, run_steps};
use wxauth_tests::runtime::{LambdaFunction, Outcome};
use wxauth_tests::stack::Stack;
use wxauth_tests::world::{APPID, World, encrypt_for, phone_plaintext, refresh_pk};

const ISSUER: &str = "https://auth.wxauth.test";

fn text<'a>(body: &'a Value, name: &str) -> &'a str {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {body}"))
}

/// Moves `attribute` of the item `pk` to `value`: what time does to it.
async fn age(world: &World, pk: &str, attribute: &str, value: i64) {
    world
        .dynamodb
        .update_item()
        .table_name(&world.table)
        .key("pk", AttributeValue::S(pk.to_owned()))
        .update_expression("SET #a = :v")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#a", attribute)
        .expression_attribute_values(":v", AttributeValue::N(value.to_string()))
        .send()
        .await
        .unwrap_or_else(|err| panic!("aging {pk}: {err:?}"));
}

fn opaque_env() -> Vec<(&'static str, String)> {
    vec![("ISSUER", ISSUER.to_owned())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_allows_a_retry_then_revokes_the_family_on_reuse() {
    let world = World::new().await;
    let mut stack = Stack::start(&world, &opaque_env(), &[]).await;
    let (login, _) = stack.log_in(&world, "oREFRESH0000000000000000001").await;
    assert_eq!(text(&login, "refreshToken").len(), 67);
    assert_eq!(login["refreshExpiresIn"], 2_592_000);

    let (status, first) = stack.refresh(text(&login, "refreshToken")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (
            &first["userId"],
            &first["openid"],
            &first["newUser"],
            &first["expiresIn"]
        ),
        (
            &login["userId"],
            &login["openid"],
            &json!(false),
            &json!(600)
        )
    );
    assert_ne!(first["refreshToken"], login["refreshToken"]);
    assert_eq!(stack.session(text(&first, "token")).await.0, 200);
    // The table holds hashes only.
    let items = format!("{:?}", world.scan(&world.table).await);
    for secret in [
        text(&login, "refreshToken"),
        text(&first, "refreshToken"),
        text(&first, "token"),
    ] {
        assert!(!items.contains(secret), "a raw token in the table");
    }

    // A retry after a lost answer, within the grace: answered, with a pair
    // that replaces the one the lost answer carried. A family never holds
    // two live refresh tokens, so a replay within the grace cannot fork it.
    let (status, retry) = stack.refresh(text(&login, "refreshToken")).await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(stack.session(text(&first, "token")).await.0, 401);
    assert_eq!(stack.refresh(text(&first, "refreshToken")).await.0, 401);
    assert!(
        world
            .refresh_item(text(&first, "refreshToken"))
            .await
            .is_none()
    );
    for _ in 0..5 {
        let (status, again) = stack.refresh(text(&login, "refreshToken")).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(stack.refresh(text(&again, "refreshToken")).await.0, 200);
    }
    let (status, retry) = stack.refresh(text(&login, "refreshToken")).await;
    assert_eq!(status, 200, "{retry}");
    let account_pk = wxauth_tests::world::home_pk(text(&login, "openid"));
    let account = world.item(&account_pk).await.expect("the account");
    assert_eq!(
        account["refreshTokens"].as_m().unwrap().len(),
        1,
        "one live refresh token in the family"
    );

    // The same token 31 s after its first use: a thief. The family goes.
    let spent = refresh_pk(text(&login, "refreshToken"));
    age(&world, &spent, "spentAt", epoch_seconds() - 31).await;
    let (status, reuse) = stack.refresh(text(&login, "refreshToken")).await;
    assert_eq!(
        (status, text(&reuse, "error")),
        (401, "invalid_refresh_token")
    );
    for token in [
        text(&login, "token"),
        text(&first, "token"),
        text(&retry, "token"),
    ] {
        assert_eq!(stack.session(token).await.0, 401);
        assert!(!stack.allowed(token).await);
    }
    for descendant in [text(&first, "refreshToken"), text(&retry, "refreshToken")] {
        assert_eq!(stack.refresh(descendant).await.0, 401);
    }
    // The stolen token replayed once more, its family gone: refused, and
    // its user's log says so (a revoked family's live tokens are deleted
    // with it, and are unknown from then on).
    let (status, replay) = stack.refresh(text(&login, "refreshToken")).await;
    assert_eq!(
        (status, text(&replay, "error")),
        (401, "invalid_refresh_token")
    );

    // Expired: refused, though the item is still there.
    let (later, _) = stack.log_in(&world, "oREFRESH0000000000000000001").await;
    age(
        &world,
        &refresh_pk(text(&later, "refreshToken")),
        "expiresAt",
        epoch_seconds(),
    )
    .await;
    let (status, expired) = stack.refresh(text(&later, "refreshToken")).await;
    assert_eq!(
        (status, text(&expired, "error")),
        (401, "invalid_refresh_token")
    );

    // Malformed: 400 before anything is read.
    for body in [
        json!({}),
        json!({"refreshToken": "short"}),
        json!({"refreshToken": 7}),
    ] {
        let event = HttpEvent::new("POST", "/refresh").json(&body).build();
        let (status, _, answer) = stack.login.call(event).await;
        assert_eq!(
            (status, text(&answer, "error")),
            (400, "invalid_request"),
            "{body}"
        );
    }

    // Well-formed but unknown (any 43 to 128 base64url characters, whether or
    // not they decode): 401, as with refresh tokens off.
    for unknown in ["x".repeat(43), "A".repeat(45), "_".repeat(128)] {
        let (status, answer) = stack.refresh(&unknown).await;
        assert_eq!(
            (status, text(&answer, "error")),
            (401, "invalid_refresh_token"),
            "{unknown}"
        );
    }

    let logs = stack.stop().await;
    let records = metric_records(&logs);
    assert!(
        has_metric(&records, "Refreshes", &[("Function", "login")]),
        "{logs}"
    );
    assert!(
        has_metric(&records, "RefreshReuse", &[("Function", "login")]),
        "{logs}"
    );
    let user_id = wxauth::domain::account::UserId::parse(text(&login, "userId")).unwrap();
    let store = world.store().await;
    let events: Vec<&str> = wxauth::ports::login_log::LoginLog::entries(&store, &user_id, 50)
        .await
        .unwrap()
        .iter()
        .map(|entry| entry.event.as_str())
        .collect();
    assert_eq!(
        events.iter().filter(|e| **e == "refresh").count(),
        13,
        "{events:?}"
    );
    assert!(events.contains(&"refresh_reused"), "{events:?}");
    // The replayed spent token and the expired one: tokens we issued.
    assert_eq!(
        events.iter().filter(|e| **e == "refresh_refused").count(),
        2,
        "{events:?}"
    );
    for secret in [text(&login, "refreshToken"), text(&first, "token")] {
        assert!(!logs.contains(secret), "a token in the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_a_later_login_deletion_and_disabling_revoke_refresh_tokens() {
    let world = World::new().await;
    let mut stack = Stack::start(&world, &opaque_env(), &[]).await;
    let openid = "oREVOKE00000000000000000001";

    // Logout of a refreshed session ends the whole family.
    let (login, _) = stack.log_in(&world, openid).await;
    let (_, refreshed) = stack.refresh(text(&login, "refreshToken")).await;
    let logout = HttpEvent::new("DELETE", "/session")
        .bearer(text(&refreshed, "token"))
        .build();
    assert_eq!(stack.check.call(logout).await.0, 204);
    assert_eq!(stack.session(text(&login, "token")).await.0, 401);
    assert_eq!(stack.refresh(text(&refreshed, "refreshToken")).await.0, 401);

    // A later login (one session per user) revokes the earlier family.
    let (earlier, _) = stack.log_in(&world, openid).await;
    let (later, _) = stack.log_in(&world, openid).await;
    assert_eq!(stack.refresh(text(&earlier, "refreshToken")).await.0, 401);

    // Disabled: 403 before the token's own state; enabled again: revoked.
    let user_id = wxauth::domain::account::UserId::parse(text(&later, "userId")).unwrap();
    let store = world.store().await;
    use wxauth::domain::account::AccountStatus;
    use wxauth::ports::accounts::AccountStore;
    assert!(
        store
            .set_status(&user_id, AccountStatus::Disabled)
            .await
            .unwrap()
    );
    let (status, refused) = stack.refresh(text(&later, "refreshToken")).await;
    assert_eq!((status, text(&refused, "error")), (403, "account_disabled"));
    assert!(
        store
            .set_status(&user_id, AccountStatus::Active)
            .await
            .unwrap()
    );
    assert_eq!(stack.refresh(text(&later, "refreshToken")).await.0, 401);

    // Deletion: every refresh token and kept session_key goes, and no item
    // holds the openid.
    let (last, _) = stack.log_in(&world, openid).await;
    let (_, renewed) = stack.refresh(text(&last, "refreshToken")).await;
    let delete = HttpEvent::new("DELETE", "/account")
        .bearer(text(&renewed, "token"))
        .build();
    assert_eq!(stack.check.call(delete).await.0, 204);
    assert_eq!(stack.refresh(text(&renewed, "refreshToken")).await.0, 401);
    let items = world.scan(&world.table).await;
    assert!(!format!("{items:?}").contains(openid), "{items:?}");
    assert!(
        items.iter().all(|item| {
            let pk = item["pk"].as_s().unwrap();
            let kept_key = pk.starts_with("sessionkey#");
            let live_refresh = pk.starts_with("refresh#") && item.get("spentAt").is_none();
            !(kept_key || live_refresh)
        }),
        "a live refresh token or a kept session_key survived the deletion: {items:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshed_session_has_the_session_key_only_within_the_window() {
    let world = World::new().await;
    let mut stack = Stack::start(&world, &opaque_env(), &[]).await;
    let openid = "oWINDOW00000000000000000001";
    let (login, issued) = stack.log_in(&world, openid).await;
    let payload = encrypt_for(&issued, &phone_plaintext(APPID, "13811112222"));

    let (_, within) = stack.refresh(text(&login, "refreshToken")).await;
    let (status, answer) = stack
        .with_json("POST", "/phone", text(&within, "token"), &payload)
        .await;
    assert_eq!(status, 200, "the login's session_key is kept: {answer}");

    // The login's 10 minutes are over: the kept session_key is gone.
    let family = world
        .item(&{
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(text(&login, "token").as_bytes()))
        })
        .await
        .expect("the login's session")["family"]
        .as_s()
        .unwrap()
        .clone();
    age(
        &world,
        &format!("sessionkey#{family}"),
        "expiresAt",
        epoch_seconds(),
    )
    .await;
    let (_, after) = stack.refresh(text(&within, "refreshToken")).await;
    let token = text(&after, "token");
    let (status, answer) = stack.with_json("POST", "/phone", token, &payload).await;
    assert_eq!(
        (status, text(&answer, "error")),
        (401, "session_key_expired"),
        "{answer}"
    );
    // The body is still checked first.
    let (status, answer) = stack
        .with_json("POST", "/phone", token, &json!({"iv": "x"}))
        .await;
    assert_eq!((status, text(&answer, "error")), (400, "invalid_request"));
    let raw = r#"{"nickName":"n"}"#;
    let signed = json!({"rawData": raw, "signature": "0".repeat(40)});
    let (status, answer) = stack.with_json("POST", "/session", token, &signed).await;
    assert_eq!(
        (status, text(&answer, "error")),
        (401, "session_key_expired")
    );
    // Phone by code needs no session_key.
    let code = world.wechat.issue_phone_code(openid, "13933334444");
    let (status, answer) = stack
        .with_json("POST", "/phone", token, &json!({"code": code}))
        .await;
    assert_eq!(status, 200, "{answer}");
    stack.stop().await;
}

/// Runs the rotation function's four steps for `token` (each twice: they
/// are idempotent) on the secret `arn`.
async fn rotate(world: &World, arn: &str, token: &str) {
    let mut env = world.function_env();
    env.push(("SIGNING_KEY_SECRET_ID", arn.to_owned()));
    let mut rotation = LambdaFunction::start("rotate-signing-key", &env).await;
    run_steps(&mut rotation, arn, token, 2).await;
    // Another secret, a step with no version: refused.
    for (event, why) in [
        (
            json!({"Step": "createSecret", "SecretId": "other", "ClientRequestToken": "t"}),
            "another secret",
        ),
        (
            json!({"Step": "setSecret", "SecretId": arn, "ClientRequestToken": "no-such-version"}),
            "no version",
        ),
        (
            json!({"Step": "dance", "SecretId": arn, "ClientRequestToken": token}),
            "unknown step",
        ),
    ] {
        assert!(
            matches!(rotation.invoke(event).await, Outcome::Error(_)),
            "{why}"
        );
    }
    rotation.stop().await;
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

fn part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Tokens every checker must refuse, made from a genuine one.
fn forgeries(genuine: &str, public_n: &[u8]) -> Vec<(&'static str, String)> {
    let header = jwt_part(genuine, 0);
    let claims = jwt_part(genuine, 1);
    let signature = genuine.split('.').nth(2).unwrap();
    let other = wxauth::domain::jwt::SigningKey::from_secret(
        &wxauth::domain::jwt::generate_key(header["kid"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let resign = |claims: &Value| {
        let claims: wxauth::domain::jwt::Claims = serde_json::from_value(claims.clone()).unwrap();
        wxauth::domain::jwt::sign(&other, &claims).unwrap()
    };
    let with = |field: &str, value: Value| {
        let mut changed = claims.clone();
        changed[field] = value;
        changed
    };
    let hs_header = part(&json!({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(public_n).unwrap();
    mac.update(format!("{hs_header}.{}", part(&claims)).as_bytes());
    let hs = format!(
        "{hs_header}.{}.{}",
        part(&claims),
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    let none = format!(
        "{}.{}.",
        part(&json!({"alg": "none", "typ": "JWT"})),
        part(&claims)
    );
    let tampered = format!(
        "{}.{}.{signature}",
        part(&header),
        part(&with("sub", json!("u_BBBBBBBBBBBBBBBBBBBBBB")))
    );
    let wrong_kid = format!(
        "{}.{}.{signature}",
        part(&json!({"alg": "RS256", "typ": "JWT", "kid": "nobody"})),
        part(&claims)
    );
    vec![
        ("alg none", none),
        ("HS256 keyed with the public key", hs),
        ("a tampered payload", tampered),
        ("a kid nobody published", wrong_kid),
        ("the right kid, another key", resign(&claims)),
        (
            "wrong iss",
            resign(&with("iss", json!("https://evil.test"))),
        ),
        ("wrong aud", resign(&with("aud", json!("other")))),
        ("expired", resign(&with("exp", json!(epoch_seconds() - 1)))),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_signs_publishes_and_every_checker_refuses_forgeries() {
    let world = World::new().await;
    let arn = world.standins.create_secret(UNROTATED_SECRET).await;
    rotate(&world, &arn, "11111111-aaaa-4000-8000-000000000001").await;
    let shared = vec![("ISSUER", ISSUER.to_owned())];
    let mut stack = Stack::start(&world, &shared, &[("SIGNING_KEY_SECRET_ID", arn.clone())]).await;
    let (login, _) = stack.log_in(&world, "oJWT000000000000000000000001").await;
    let token = text(&login, "token").to_owned();

    let header = jwt_part(&token, 0);
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT", "kid": "wxauth-11111111-aaaa-4000-8000-000000000001"})
    );
    let claims = jwt_part(&token, 1);
    let mut names: Vec<&String> = claims.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(
        names,
        ["appid", "aud", "exp", "iat", "iss", "openid", "sid", "sub"]
    );
    assert_eq!(
        (
            &claims["iss"],
            &claims["aud"],
            &claims["sub"],
            &claims["appid"]
        ),
        (
            &json!(ISSUER),
            &json!("wxauth"),
            &login["userId"],
            &json!(APPID)
        )
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert!(text(&claims, "sid").len() >= 22);

    assert_eq!(stack.session(&token).await.0, 200);
    assert!(stack.allowed(&token).await);
    let (status, refreshed) = stack.refresh(text(&login, "refreshToken")).await;
    assert_eq!(status, 200);
    assert_eq!(
        jwt_part(text(&refreshed, "token"), 0)["kid"],
        "wxauth-11111111-aaaa-4000-8000-000000000001"
    );

    // The JWKS and the OpenID configuration, from check-session.
    let (status, headers, jwks) = stack
        .check
        .call(HttpEvent::new("GET", "/.well-known/jwks.json").build())
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let key = &jwks["keys"][0];
    assert_eq!(
        (&key["kty"], &key["use"], &key["alg"], &key["kid"]),
        (
            &json!("RSA"),
            &json!("sig"),
            &json!("RS256"),
            &header["kid"]
        )
    );
    let (status, _, config) = stack
        .check
        .call(HttpEvent::new("GET", "/.well-known/openid-configuration").build())
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        config["jwks_uri"],
        format!("{ISSUER}/.well-known/jwks.json")
    );
    assert_eq!(
        config["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );

    let n = URL_SAFE_NO_PAD.decode(text(key, "n")).unwrap();
    for (what, forged) in forgeries(&token, &n) {
        assert_eq!(
            stack.session(&forged).await.0,
            401,
            "GET /session took {what}"
        );
        assert!(
            !stack.allowed(&forged).await,
            "the authorizer allowed {what}"
        );
    }

    // Revocation stays instant on wxauth's own routes.
    let logout = HttpEvent::new("DELETE", "/session").bearer(&token).build();
    assert_eq!(stack.check.call(logout).await.0, 204);
    assert_eq!(stack.session(&token).await.0, 401);
    assert!(!stack.allowed(&token).await);
    assert_eq!(
        stack.session(text(&refreshed, "token")).await.0,
        401,
        "the family went with it"
    );
    let logs = stack.stop().await;
    assert!(!logs.contains("PRIVATE KEY"), "the private key in a log");
    assert!(!logs.contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_signs_only_after_its_lead_and_the_previous_stays_accepted() {
    let world = World::new().await;
    let arn = world
        .standins
        .create_secret(r#"{"placeholder": true}"#)
        .await;
    rotate(&world, &arn, "22222222-aaaa-4000-8000-00000000000a").await;
    let shared = vec![("ISSUER", ISSUER.to_owned())];
    let signing = vec![("SIGNING_KEY_SECRET_ID", arn.clone())];
    let mut stack = Stack::start(&world, &shared, &signing).await;
    let (before, _) = stack.log_in(&world, "oROTATE00000000000000000001").await;
    stack.stop().await;

    rotate(&world, &arn, "22222222-aaaa-4000-8000-00000000000b").await;
    let (a, b, c) = (
        "wxauth-22222222-aaaa-4000-8000-00000000000a",
        "wxauth-22222222-aaaa-4000-8000-00000000000b",
        "wxauth-22222222-aaaa-4000-8000-00000000000c",
    );
    // The default lead (2 hours and the caches' 10 minutes): a fresh login
    // still signs with the key that signed before the rotation.
    let mut held = Stack::start(&world, &shared, &signing).await;
    let (during, _) = held.log_in(&world, "oROTATE00000000000000000002").await;
    assert_eq!(jwt_part(text(&during, "token"), 0)["kid"], a);
    assert_eq!(
        jwks_kids(&mut held).await,
        [a, b],
        "the new key is published before it signs"
    );
    held.stop().await;

    // A second rotation within the lead (an operator's change an hour after
    // the schedule's): AWSPREVIOUS is now b, public for minutes. Nothing
    // that may still sign is unpublished, and login reads a by its version
    // (it holds no stage any more) to go on signing with it.
    rotate(&world, &arn, "22222222-aaaa-4000-8000-00000000000c").await;
    let mut twice = Stack::start(&world, &shared, &signing).await;
    let (after_two, _) = twice.log_in(&world, "oROTATE00000000000000000004").await;
    assert_eq!(jwt_part(text(&after_two, "token"), 0)["kid"], a);
    assert_eq!(twice.session(text(&after_two, "token")).await.0, 200);
    assert_eq!(jwks_kids(&mut twice).await, [a, b, c]);
    twice.stop().await;
    // The steps check the version's stage, as AWS's rotation templates do:
    // finishSecret by hand with b's token (AWSPREVIOUS) changes nothing.
    let mut env = world.function_env();
    env.push(("SIGNING_KEY_SECRET_ID", arn.clone()));
    let mut rotation = LambdaFunction::start("rotate-signing-key", &env).await;
    let back = json!({"Step": "finishSecret", "SecretId": arn, "ClientRequestToken": "22222222-aaaa-4000-8000-00000000000b"});
    assert!(matches!(rotation.invoke(back).await, Outcome::Error(_)));
    rotation.stop().await;

    // The lead over (here: a lead of 0): the newest key signs; tokens signed
    // with the earlier keys are still accepted.
    let mut lead = signing.clone();
    lead.push(("SIGNING_KEY_LEAD_SECONDS", "0".to_owned()));
    let mut after = Stack::start(&world, &shared, &lead).await;
    let (switched, _) = after.log_in(&world, "oROTATE00000000000000000003").await;
    assert_eq!(jwt_part(text(&switched, "token"), 0)["kid"], c);
    assert_eq!(after.session(text(&switched, "token")).await.0, 200);
    assert!(after.allowed(text(&switched, "token")).await);
    for earlier in [&before, &after_two] {
        assert_eq!(
            after.session(text(earlier, "token")).await.0,
            200,
            "signed with a"
        );
        assert!(after.allowed(text(earlier, "token")).await);
    }
    after.stop().await;
}

async fn jwks_kids(stack: &mut Stack) -> Vec<String> {
    let (_, _, jwks) = stack
        .check
        .call(HttpEvent::new("GET", "/.well-known/jwks.json").build())
        .await;
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort_unstable();
    kids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_signing_key_or_no_issuer_stops_login_at_start_up() {
    let world = World::new().await;
    let bad = world
        .standins
        .create_secret(r#"{"kid": "k", "privateKey": "not a key"}"#)
        .await;
    for (env, named) in [
        (
            vec![
                ("SIGNING_KEY_SECRET_ID", bad.clone()),
                ("ISSUER", ISSUER.to_owned()),
            ],
            "SIGNING_KEY_SECRET_ID",
        ),
        (vec![("SIGNING_KEY_SECRET_ID", bad.clone())], "ISSUER"),
    ] {
        let mut full = world.function_env();
        full.extend(env);
        let mut login = LambdaFunction::start("login", &full).await;
        let status = login
            .wait_exit(std::time::Duration::from_secs(10))
            .await
            .expect("login exits at start-up");
        assert!(!status.success());
        let logs = login.logs.text();
        assert!(logs.contains(named), "{logs}");
        assert!(
            !logs.contains("not a key"),
            "the secret's value in a log: {logs}"
        );
    }
}

/// The shape of a refresh token does not depend on the setting: with refresh
/// tokens off, a well-formed token is 401 `invalid_refresh_token` (as an
/// unknown one is with them on) and a malformed one 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_off_refuse_a_well_formed_token_as_401() {
    let world = World::new().await;
    let mut env = world.function_env();
    env.push(("REFRESH_TTL_SECONDS", "0".to_owned()));
    let mut login = LambdaFunction::start("login", &env).await;
    for (token, status, error) in [
        ("x".repeat(43), 401, "invalid_refresh_token"),
        ("A".repeat(67), 401, "invalid_refresh_token"),
        ("x".repeat(42), 400, "invalid_request"),
        ("x".repeat(129), 400, "invalid_request"),
        (format!("{}=", "A".repeat(43)), 400, "invalid_request"),
    ] {
        let event = HttpEvent::new("POST", "/refresh")
            .json(&json!({"refreshToken": token}))
            .build();
        let (got, _, answer) = login.call(event).await;
        assert_eq!((got, text(&answer, "error")), (status, error), "{token}");
    }
    login.stop().await;
}
