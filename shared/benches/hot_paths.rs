//! The hot paths of a warm function: crypto primitives and each handler end to
//! end in-process (API Gateway event JSON text in → response JSON text out,
//! through lambda_http as the runtime drives it), with the in-memory store and a
//! stub WeChat, so only our own code is measured.
//!
//! `cargo bench -p wxauth --bench hot_paths`; CI runs it once per benchmark in
//! test mode (`cargo test --all-targets`) so it cannot rot.

// A benchmark is test code: a failed setup should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use wxauth::domain::app::{AppId, Apps};
use wxauth::domain::crypto::{EncryptedData, decode_base64, signature_matches};
use wxauth::domain::phone::decrypt_phone;
use wxauth::domain::redact::{AppSecret, SessionKey};
use wxauth::domain::risk::RiskPolicy;
use wxauth::domain::session::Session;
use wxauth::domain::time::epoch_seconds;
use wxauth::domain::token::SessionToken;
use wxauth::domain::wechat::{WeChatError, WxSession};
use wxauth::edge::lambda::{Context, handle_event};
use wxauth::edge::routes::Handler;
use wxauth::handlers::{CheckSession, DecryptPhone, Login, LoginSettings};
use wxauth::ports::memory::MemorySessionStore;
use wxauth::ports::secrets::StaticSecrets;
use wxauth::ports::wechat::WeChatApi;
use wxauth::wechat::RetryPolicy;

const APPID: &str = "wx4f4bc4dec97d474b";
const KEY: [u8; 16] = *b"0123456789abcdef";
const OPENID: &str = "oGZUI0egBJY1zhBYw2KhdUfwVJJE";

fn session_key() -> SessionKey {
    SessionKey::new(STANDARD.encode(KEY))
}

/// A realistic getPhoneNumber payload: ~150 bytes of JSON, as WeChat sends it.
fn phone_payload() -> (String, String) {
    let iv = [7u8; 16];
    let plaintext = json!({
        "phoneNumber": "13580006666",
        "purePhoneNumber": "13580006666",
        "countryCode": "86",
        "watermark": {"appid": APPID, "timestamp": 1_795_334_400}
    })
    .to_string();
    let ciphertext = wxauth::domain::crypto::encrypt_like_wechat(&KEY, &iv, plaintext.as_bytes());
    (STANDARD.encode(ciphertext), STANDARD.encode(iv))
}

/// One invocation as the runtime runs it: the payload's text in, the answer's out.
async fn invoke(handler: &impl Handler, event: &str) -> String {
    let answer = handle_event(handler, event, Context::default()).await;
    serde_json::to_string(&answer).unwrap()
}

fn event(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> String {
    let mut headers = json!({
        "host": "abc123.execute-api.ap-east-1.amazonaws.com",
        "content-type": "application/json",
        "user-agent": "Mozilla/5.0 MicroMessenger/8.0.50",
    });
    if let Some(token) = token {
        headers["authorization"] = json!(format!("Bearer {token}"));
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.ap-east-1.amazonaws.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "MicroMessenger"},
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_334_400_000u64
        },
        "isBase64Encoded": false,
    });
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
    }
    event.to_string()
}

struct StubWeChat;

impl WeChatApi for StubWeChat {
    async fn jscode2session(
        &self,
        _appid: &str,
        _secret: &AppSecret,
        _code: &str,
        _timeout: Duration,
    ) -> Result<WxSession, WeChatError> {
        Ok(WxSession {
            openid: OPENID.into(),
            unionid: None,
            session_key: session_key(),
        })
    }
}

fn primitives(c: &mut Criterion) {
    let (encrypted, iv) = phone_payload();
    let key = session_key();
    c.bench_function(
        "phone decrypt (base64 + AES-CBC + unpad + JSON + watermark)",
        |b| {
            b.iter(|| {
                let ciphertext = decode_base64(black_box(&encrypted)).unwrap();
                let iv = decode_base64(black_box(&iv)).unwrap();
                let data = EncryptedData::new(ciphertext, &iv).unwrap();
                decrypt_phone(&key, &data, APPID).unwrap()
            })
        },
    );

    let raw = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#;
    let sig_key = SessionKey::new("HyVFkGl5F5OQWJZZaNzBBg==");
    let signature: [u8; 20] = hex::decode("75e81ceda165f4ffa64f4068af58c64b8f54b88c")
        .unwrap()
        .try_into()
        .unwrap();
    c.bench_function("rawData signature check", |b| {
        b.iter(|| assert!(signature_matches(black_box(raw), &sig_key, &signature)))
    });

    c.bench_function("token generation + SHA-256 table key", |b| {
        b.iter(|| SessionToken::generate().unwrap().key())
    });
}

/// A memory store holding one live session, and its token.
fn store_with_session(unionid: Option<&str>) -> (std::sync::Arc<MemorySessionStore>, SessionToken) {
    let store = MemorySessionStore::new();
    let now = epoch_seconds();
    let token = store
        .insert_new(Session {
            user_id: wxauth::domain::account::UserId::generate().unwrap(),
            appid: AppId::parse(APPID),
            openid: OPENID.into(),
            unionid: unionid.map(Into::into),
            session_key: Some(session_key()),
            session_key_expires_at: None,
            family: None,
            created_at: now,
            expires_at: now + 3600,
        })
        .unwrap();
    (std::sync::Arc::new(store), token)
}

fn handlers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (store, token) = store_with_session(None);

    let check = CheckSession::new(store.clone());
    let get_session = event("GET", "/session", Some(token.expose()), None);
    c.bench_function("handler: GET /session", |b| {
        b.to_async(&runtime).iter(|| async {
            let answer = invoke(&check, black_box(&get_session)).await;
            assert!(answer.contains("\"statusCode\":200"), "{answer}");
        })
    });

    let raw = r#"{"nickName":"Band","gender":1}"#;
    let signature = hex::encode(Sha1::digest(format!("{raw}{}", session_key().expose())));
    let post_session = event(
        "POST",
        "/session",
        Some(token.expose()),
        Some(json!({"rawData": raw, "signature": signature})),
    );
    c.bench_function("handler: POST /session (signature)", |b| {
        b.to_async(&runtime).iter(|| async {
            let answer = invoke(&check, black_box(&post_session)).await;
            assert!(answer.contains("\"statusCode\":200"), "{answer}");
        })
    });

    let phone =
        DecryptPhone::new(store.clone(), Apps::parse(APPID).unwrap()).with_watermark_max_age(None);
    let (encrypted, iv) = phone_payload();
    let post_phone = event(
        "POST",
        "/phone",
        Some(token.expose()),
        Some(json!({"encryptedData": encrypted, "iv": iv})),
    );
    c.bench_function("handler: POST /phone", |b| {
        b.to_async(&runtime).iter(|| async {
            let answer = invoke(&phone, black_box(&post_phone)).await;
            assert!(answer.contains("\"statusCode\":200"), "{answer}");
        })
    });

    let login = Login::new(
        store.clone(),
        StubWeChat,
        StaticSecrets::single(AppId::parse(APPID).unwrap(), AppSecret::new("secret")),
        LoginSettings {
            apps: Apps::parse(APPID).unwrap(),
            session_ttl_seconds: 600,
            retry: RetryPolicy::default(),
            log_retention_days: 180,
            risk: RiskPolicy::default(),
        },
    );
    let post_login = event("POST", "/login", None, Some(json!({"code": "081abcDEF"})));
    c.bench_function("handler: POST /login (stub WeChat, memory store)", |b| {
        b.to_async(&runtime).iter(|| async {
            let answer = invoke(&login, black_box(&post_login)).await;
            assert!(answer.contains("\"statusCode\":200"), "{answer}");
        })
    });
}

/// The authorizer's warm decision, I/O excluded (memory store): the payload's
/// text in, as the runtime hands it over, the answer's text out.
fn authorizer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (store, token) = store_with_session(Some("oUNION"));
    let authorizer = wxauth::handlers::authorizer::Authorizer::new(store);
    let bearer = format!("Bearer {}", token.expose());
    let event = json!({
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:ap-east-1:123456789012:abc123/$default/GET/orders",
        "identitySource": [bearer],
        "routeKey": "GET /orders",
        "rawPath": "/orders",
        "rawQueryString": "",
        "headers": {"authorization": bearer, "host": "abc123.execute-api.ap-east-1.amazonaws.com", "user-agent": "MicroMessenger"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.ap-east-1.amazonaws.com",
            "http": {"method": "GET", "path": "/orders", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "MicroMessenger"},
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "GET /orders",
            "stage": "$default",
            "time": "22/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_334_400_000u64
        }
    })
    .to_string();
    c.bench_function("authorizer: HTTP API allow (memory store)", |b| {
        b.to_async(&runtime).iter(|| async {
            let payload: Value = serde_json::from_str(black_box(&event)).unwrap();
            let deadline = wxauth::runtime::deadline::Deadline::after(Duration::from_secs(5));
            let answer = authorizer.decide_answer(payload, deadline).await.unwrap();
            let text = serde_json::to_string(&answer).unwrap();
            assert!(text.starts_with("{\"isAuthorized\":true"), "{text}");
        })
    });
}

/// JWTs: checking one in process (no I/O: the published key is cached), what
/// every route and the authorizer add for a JWT; signing one, what login
/// adds; parsing the private key, what a (re-)read of the secret costs.
fn jwts(c: &mut Criterion) {
    use wxauth::domain::jwt::{Claims, JwtSettings, SigningKey, generate_key, sign};
    use wxauth::domain::token::Bearer;
    use wxauth::ports::keys::PublicKeyStore;
    use wxauth::services::access::TokenCheck;

    let secret = generate_key("bench").unwrap();
    let key = SigningKey::from_secret(&secret).unwrap();
    let settings = JwtSettings {
        issuer: "https://auth.example.com".into(),
        audience: "wxauth".into(),
    };
    let now = epoch_seconds();
    let claims = Claims {
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        sub: "u_AAAAAAAAAAAAAAAAAAAAAA".into(),
        openid: OPENID.into(),
        unionid: None,
        appid: APPID.into(),
        sid: SessionToken::generate().unwrap().expose().to_owned(),
        iat: now,
        exp: now + 600,
    };
    let jwt = sign(&key, &claims).unwrap();
    let store = MemorySessionStore::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(store.publish(&[key.key_version()], now))
        .unwrap();
    let check = TokenCheck::new(Some(settings));
    let bearer = Bearer::from_header(Some(&format!("Bearer {jwt}"))).unwrap();
    // The first check loads the key set; the benchmark measures the warm path.
    runtime
        .block_on(check.session_ref(&store, &bearer))
        .unwrap();
    c.bench_function(
        "JWT check (header, RS256 signature, claims; key cached)",
        |b| {
            b.iter(|| {
                runtime
                    .block_on(check.session_ref(&store, black_box(&bearer)))
                    .unwrap()
            })
        },
    );
    c.bench_function("JWT sign (RS256, 2048-bit key)", |b| {
        b.iter(|| sign(&key, black_box(&claims)).unwrap())
    });
    let secret_json = serde_json::to_string(&secret).unwrap();
    c.bench_function("signing key parse (PEM + PKCS#8 + checks)", |b| {
        b.iter(|| SigningKey::from_secret_string(black_box(&secret_json)).unwrap())
    });
}

criterion_group!(benches, primitives, handlers, authorizer, jwts);
criterion_main!(benches);
