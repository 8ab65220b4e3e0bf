//! Events as SAM writes them drive the functions to 200 against DynamoDB Local:
//! the HTTP API events in infra/events/ (for `sam local invoke`, with the session
//! that infra/local_dynamodb.py seeds), and what `sam local generate-event`
//! writes for an HTTP API, a REST API and an ALB (tests/events/, written by
//! infra/sam-events.sh), each answered in its source's shape.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use wechat_sim::{Issued, WeChatSim};
use wxauth::domain::app::{AppId, Apps};
use wxauth::domain::redact::SessionKey;
use wxauth::domain::session::Session;
use wxauth::domain::time::epoch_seconds;
use wxauth::domain::token::SessionToken;
use wxauth::handlers::{CheckSession, DecryptPhone};
use wxauth::ports::secrets::StaticSecrets;
use wxauth::ports::sessions::SessionStore;
use wxauth_tests::invoke::invoke_event;
use wxauth_tests::world::{World, login_with};

fn read_json(folder: &str, name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(folder)
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn infra(name: &str) -> Value {
    read_json("../infra", name)
}

/// What `sam local generate-event` wrote, with the request's own body (as
/// base64, as the generated events carry it) and, when given, the bearer token
/// in every header map the source has.
fn generated(name: &str, body: &Value, token: Option<&str>) -> Value {
    let mut event = read_json("events", name);
    assert_eq!(event["isBase64Encoded"], true, "{name}");
    event["body"] = json!(STANDARD.encode(body.to_string()));
    if let Some(token) = token {
        let bearer = format!("Bearer {token}");
        event["headers"]["Authorization"] = json!(bearer);
        if event.get("multiValueHeaders").is_some() {
            event["multiValueHeaders"]["Authorization"] = json!([bearer]);
        }
    }
    event
}

#[tokio::test]
async fn generated_events_of_every_source_are_served() {
    let world = World::new().await;
    let (login, check, phone) = (
        world.login().await,
        world.check().await,
        world.phone().await,
    );

    // HTTP API (payload 2.0), stage "prod": POST /login.
    let (code, issued) = world.wechat.issue_code();
    let event = generated("http-api-proxy-login.json", &json!({"code": code}), None);
    let answer = invoke_event(&login, &event, None).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    let raw: Value = serde_json::from_str(&answer.raw).unwrap();
    assert_eq!(raw["cookies"], json!([]), "{}", answer.raw);
    assert_eq!(answer.body["openid"], issued.openid.as_str());
    let token = answer.body["token"].as_str().unwrap().to_owned();

    // REST API proxy (payload 1.0), stage "prod": GET /session.
    let event = generated("aws-proxy-session.json", &json!({}), Some(&token));
    let answer = invoke_event(&check, &event, None).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(answer.body["valid"], true);
    assert_eq!(answer.body["openid"], issued.openid.as_str());
    let raw: Value = serde_json::from_str(&answer.raw).unwrap();
    assert_eq!(
        raw["multiValueHeaders"]["content-type"],
        json!(["application/json"]),
        "{}",
        answer.raw
    );

    // ALB target: POST /phone by code.
    let phone_code = world.wechat.issue_phone_code(&issued.openid, "13900139000");
    let event = generated(
        "alb-request-phone.json",
        &json!({"code": phone_code}),
        Some(&token),
    );
    let answer = invoke_event(&phone, &event, None).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(answer.body["purePhoneNumber"], "13900139000");
    let raw: Value = serde_json::from_str(&answer.raw).unwrap();
    assert_eq!(raw["statusDescription"], "200 OK", "{}", answer.raw);

    // The same refusal, byte for byte, whatever the source: PUT /session.
    let mut answers = Vec::new();
    for name in [
        "http-api-proxy-login.json",
        "aws-proxy-session.json",
        "alb-request-phone.json",
    ] {
        let mut event = generated(name, &json!({}), Some(&token));
        if event["version"] == "2.0" {
            event["rawPath"] = json!("/session");
            event["requestContext"]["http"]["method"] = json!("PUT");
        } else {
            event["path"] = json!("/session");
            event["httpMethod"] = json!("PUT");
        }
        let answer = invoke_event(&check, &event, None).await;
        let raw: Value = serde_json::from_str(&answer.raw).unwrap();
        let allow = raw["headers"]["allow"]
            .as_str()
            .or(raw["multiValueHeaders"]["allow"][0].as_str())
            .map(str::to_owned);
        answers.push((answer.status, raw["body"].clone(), allow));
    }
    assert_eq!(answers[0].0, 405);
    assert_eq!(answers[0].2.as_deref(), Some("GET, POST, DELETE"));
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "{answers:?}"
    );
}

#[tokio::test]
async fn sam_local_events_drive_the_handlers() {
    let fixture = infra("events/fixture.json");
    let text = |k: &str| fixture[k].as_str().unwrap().to_owned();
    let appid = text("appid");
    let world = World::new().await;
    let store = world.store().await;

    // The session infra/local_dynamodb.py seeds.
    let token = SessionToken::parse(&text("token")).unwrap();
    let now = epoch_seconds();
    let session = Session {
        user_id: wxauth::domain::account::UserId::parse(&text("userId")).unwrap(),
        // As infra/local_dynamodb.py seeds it: a session without an app of its own.
        appid: None,
        openid: text("openid"),
        unionid: None,
        session_key: Some(SessionKey::new(text("sessionKey"))),
        session_key_expires_at: None,
        family: None,
        created_at: now,
        expires_at: now + 600,
    };
    // Put as infra/local_dynamodb.py puts it: a session item, no login (a
    // login's transaction token, derived from this fixed key, would be reused
    // by every run against the same DynamoDB Local).
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    world
        .dynamodb
        .put_item()
        .table_name(&world.table)
        .item("pk", S(token.key().as_str().to_owned()))
        .item("userId", S(session.user_id.to_string()))
        .item("openid", S(session.openid.clone()))
        .item("sessionKey", S(text("sessionKey")))
        .item("createdAt", N(session.created_at.to_string()))
        .item("expiresAt", N(session.expires_at.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(store.get(&token.key()).await.unwrap(), Some(session));

    let check = CheckSession::new(world.store().await);
    // infra/env.json turns the watermark age check off for sam local: the event's
    // ciphertext is fixed, so its watermark ages.
    let max_age: u64 = infra("env.json")["DecryptPhoneFunction"]["WATERMARK_MAX_AGE_SECONDS"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let phone = DecryptPhone::new(world.store().await, Apps::parse(&appid).unwrap())
        .with_watermark_max_age((max_age > 0).then_some(max_age));
    for (file, expect) in [
        ("events/session-get.json", "openid"),
        ("events/session-post.json", "userInfo"),
        ("events/phone.json", "purePhoneNumber"),
    ] {
        let event = infra(file);
        let answer = if file.contains("phone") {
            invoke_event(&phone, &event, None).await
        } else {
            invoke_event(&check, &event, None).await
        };
        assert_eq!(answer.status, 200, "{file}: {}", answer.raw);
        assert!(answer.body.get(expect).is_some(), "{file}: {}", answer.raw);
    }

    // The login event's code, as the fake WeChat would issue it.
    let wechat = WeChatSim::start(&appid, "sam-secret")
        .await
        .expect("WeChat simulator on loopback");
    let key_bytes: [u8; 16] = STANDARD
        .decode(text("sessionKey"))
        .unwrap()
        .try_into()
        .unwrap();
    wechat.accept_code(
        &text("code"),
        Issued {
            openid: text("openid"),
            unionid: None,
            session_key: text("sessionKey"),
            key_bytes,
        },
    );
    let login = login_with(
        world.store().await,
        &wechat.base,
        StaticSecrets::single(
            AppId::parse(&appid).unwrap(),
            wxauth::domain::redact::AppSecret::new("sam-secret"),
        ),
        Apps::parse(&appid).unwrap(),
    );
    let answer = invoke_event(&login, &infra("events/login.json"), None).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
}

/// The lines of the block under the line `{indent}{key}:` in a YAML text: up to
/// the next line indented as much or less.
fn block<'a>(text: &'a str, indent: usize, key: &str) -> Vec<&'a str> {
    let header = format!("{}{key}:", " ".repeat(indent));
    let mut lines = text.lines().skip_while(|line| line.trim_end() != header);
    assert!(lines.next().is_some(), "no `{header}` in the template");
    lines
        .take_while(|line| line.trim().is_empty() || line.len() - line.trim_start().len() > indent)
        .collect()
}

/// The keys at exactly `indent` in `lines`.
fn keys(lines: &[&str], indent: usize) -> Vec<String> {
    lines
        .iter()
        .filter(|line| {
            line.len() - line.trim_start().len() == indent && !line.trim_start().starts_with('#')
        })
        .filter_map(|line| line.trim().split_once(':').map(|(key, _)| key.to_owned()))
        .collect()
}

#[test]
fn env_json_names_only_declared_functions_and_variables() {
    let env = infra("env.json");
    let template =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
            .unwrap();
    let resources = block(&template, 0, "Resources");
    let functions = keys(&resources, 2);
    let globals = block(&template, 0, "Globals").join("\n");
    let global_variables = keys(&block(&globals, 6, "Variables"), 8);
    for (section, vars) in env.as_object().unwrap() {
        // SAM overrides only variables the template declares, for that function.
        // env.json's "Parameters" are variables for every function.
        let declared = if section == "Parameters" {
            global_variables.clone()
        } else {
            assert!(
                functions.contains(section),
                "{section} is not a resource of template.yaml"
            );
            let function = block(&resources.join("\n"), 2, section).join("\n");
            let own = if function.contains("        Variables:") {
                keys(&block(&function, 8, "Variables"), 10)
            } else {
                Vec::new()
            };
            own.into_iter().chain(global_variables.clone()).collect()
        };
        for name in vars.as_object().unwrap().keys() {
            assert!(
                declared.contains(name),
                "{section}.{name} is not declared: {declared:?}"
            );
        }
    }
    // The check itself: a name declared elsewhere in the template does not count.
    assert!(
        !keys(
            &block(
                &block(&resources.join("\n"), 2, "CheckSessionFunction").join("\n"),
                8,
                "Variables"
            ),
            10
        )
        .contains(&"WATERMARK_MAX_AGE_SECONDS".to_owned())
    );
}
