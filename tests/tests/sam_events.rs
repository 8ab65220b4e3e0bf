//! The events in infra/events/ (for `sam local invoke`) are realistic API Gateway
//! v2 payloads: they parse and drive the handlers to 200 against DynamoDB Local,
//! with the session that infra/local_dynamodb.py seeds.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use wxauth::handlers::{CheckSession, DecryptPhone, Login, LoginSettings};
use wxauth::lambda::handle_event;
use wxauth::redact::SessionKey;
use wxauth::secret::StaticSecret;
use wxauth::session::{Session, SessionStore, epoch_seconds};
use wxauth::token::SessionToken;
use wxauth::wechat::HttpWeChat;
use wxauth_tests::fake_wechat::{FakeWeChat, Issued};
use wxauth_tests::world::World;

fn infra(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../infra")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
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
        openid: text("openid"),
        unionid: None,
        session_key: SessionKey::new(text("sessionKey")),
        created_at: now,
        expires_at: now + 600,
    };
    store.create(&token.key(), &session).await.unwrap();

    let check = CheckSession::new(world.store().await);
    // infra/env.json turns the watermark age check off for sam local: the event's
    // ciphertext is fixed, so its watermark ages.
    let max_age: u64 = infra("env.json")["DecryptPhoneFunction"]["WATERMARK_MAX_AGE_SECONDS"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let phone = DecryptPhone::new(world.store().await, appid.clone())
        .with_watermark_max_age((max_age > 0).then_some(max_age));
    for (file, expect) in [
        ("events/session-get.json", "openid"),
        ("events/session-post.json", "userInfo"),
        ("events/phone.json", "purePhoneNumber"),
    ] {
        let event = infra(file);
        let response = if file.contains("phone") {
            handle_event(&phone, event, None).await
        } else {
            handle_event(&check, event, None).await
        };
        assert_eq!(response.status_code, 200, "{file}: {}", response.body);
        let body: Value = serde_json::from_str(&response.body).unwrap();
        assert!(body.get(expect).is_some(), "{file}: {body}");
    }

    // The login event's code, as the fake WeChat would issue it.
    let wechat = FakeWeChat::start(&appid, "sam-secret").await;
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
    let login = Login::new(
        world.store().await,
        HttpWeChat::new(&wechat.base, Duration::from_secs(1)).unwrap(),
        StaticSecret::new(wxauth::redact::AppSecret::new("sam-secret")),
        LoginSettings {
            appid,
            session_ttl_seconds: 600,
            retry: World::retry(),
        },
    );
    let response = handle_event(&login, infra("events/login.json"), None).await;
    assert_eq!(response.status_code, 200, "{}", response.body);
}

#[test]
fn env_json_names_only_declared_functions_and_variables() {
    let env = infra("env.json");
    let template =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
            .unwrap();
    for (section, vars) in env.as_object().unwrap() {
        if section != "Parameters" {
            assert!(
                template.contains(&format!("\n  {section}:\n")),
                "{section} is not a resource of template.yaml"
            );
        }
        for name in vars.as_object().unwrap().keys() {
            // SAM overrides only variables the template declares.
            let declared = template.contains(&format!("{name}:"));
            assert!(
                declared,
                "{section}.{name} is not declared in template.yaml"
            );
        }
    }
}
