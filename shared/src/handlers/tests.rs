//! Handler behaviour with in-process fakes. The same flows run against DynamoDB
//! Local, moto and the WeChat simulator in the `wxauth-tests` crate.
//!
//! Every test runs on tokio's paused clock, so the production retry policy's
//! backoffs and the 8-second budget apply as they are, without waiting.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::*;
use crate::domain::account::{Account, AccountStatus, BoundPhone, UserId};
use crate::domain::crypto::tests::encrypt;
use crate::domain::login_log::LogEntry;
use crate::domain::redact::{AppSecret, SessionKey};
use crate::domain::session::Session;
use crate::domain::time::epoch_seconds;
use crate::domain::token::{SessionToken, TokenKey};
use crate::domain::wechat::{PhoneInfo, SessionKeyStatus, WeChatError, WxSession};
use crate::edge::request::{ApiRequest, ApiResponse, MAX_BODY_BYTES};
use crate::edge::routes::Handler;
use crate::ports::accounts::AccountStore;
use crate::ports::errors::StoreError;
use crate::ports::errors::{Upstream, UpstreamError};
use crate::ports::keys::PublicKeyStore;
use crate::ports::login_log::LoginLog;
use crate::ports::memory::MemorySessionStore;
use crate::ports::secrets::{SecretError, SecretSource, StaticSecrets};
use crate::ports::sessions::{LoginOutcome, LoginWrite, SessionStore};
use crate::ports::sessions::{LoginStore, RefreshStore};
use crate::ports::wechat::WeChatApi;
use crate::runtime::deadline::{ANSWER_WITHIN, Deadline};
use crate::services::login::{READ_BACK_BUDGET, SESSION_WRITE_BUDGET};
use crate::wechat::RetryPolicy;
use crate::wechat::in_process::InProcessWeChat;
use crate::wechat::server_api::WeChatServerApi;

const APPID: &str = "wxTESTAPPID0000001";

fn apps() -> crate::domain::app::Apps {
    crate::domain::app::Apps::parse(APPID).unwrap()
}

fn app_id() -> crate::domain::app::AppId {
    crate::domain::app::AppId::parse(APPID).unwrap()
}

fn static_secret(secret: &str) -> StaticSecrets {
    StaticSecrets::single(app_id(), AppSecret::new(secret))
}

/// Requests go through the edge's dispatch, as in a function: route table,
/// size and method checks, then the handler.
pub(super) trait Call: Handler + Sized {
    async fn call(&self, request: ApiRequest) -> ApiResponse {
        crate::edge::dispatch(self, request).await
    }
}

impl<H: Handler> Call for H {}
const KEY: [u8; 16] = *b"0123456789abcdef";

fn session_key() -> SessionKey {
    SessionKey::new(STANDARD.encode(KEY))
}

fn wx_session() -> WxSession {
    WxSession {
        openid: "oOPENID123456".into(),
        unionid: Some("uUNION".into()),
        session_key: session_key(),
    }
}

/// Every code logs in as `wx_session()`, after answering `script` in order.
fn scripted(script: Vec<Result<WxSession, WeChatError>>) -> InProcessWeChat {
    InProcessWeChat::logging_in(wx_session(), script)
}

/// Hands out "old" until refreshed, then "new"; counts fetches.
#[derive(Default)]
struct RotatingSecret {
    refreshed: AtomicU32,
}

impl SecretSource for RotatingSecret {
    async fn appsecret(&self, _: &crate::domain::app::AppId) -> Result<AppSecret, SecretError> {
        Ok(AppSecret::new(
            if self.refreshed.load(Ordering::SeqCst) > 0 {
                "new"
            } else {
                "old"
            },
        ))
    }
    async fn refresh(&self, appid: &crate::domain::app::AppId) -> Result<AppSecret, SecretError> {
        self.refreshed.fetch_add(1, Ordering::SeqCst);
        self.appsecret(appid).await
    }
}

struct DownSecret;

impl SecretSource for DownSecret {
    async fn appsecret(&self, _: &crate::domain::app::AppId) -> Result<AppSecret, SecretError> {
        Err(SecretError::Unavailable("connection refused".into()))
    }
    async fn refresh(&self, appid: &crate::domain::app::AppId) -> Result<AppSecret, SecretError> {
        self.appsecret(appid).await
    }
}

/// Delegates to a memory store, but claims the first `collisions` keys are taken.
#[derive(Default)]
struct CollidingStore {
    inner: MemorySessionStore,
    collisions: AtomicU32,
    down: bool,
}

impl CollidingStore {
    /// What a write gets before reaching the inner store: down, or a collision.
    fn refusal(&self) -> Option<StoreError> {
        if self.down {
            return Some(StoreError::Unavailable("refused".into()));
        }
        let collided = self
            .collisions
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        collided.then_some(StoreError::AlreadyExists)
    }
}

impl SessionStore for CollidingStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<Session>, StoreError> {
        if self.down {
            return Err(StoreError::Unavailable("refused".into()));
        }
        self.inner.get(key).await
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}

impl LoginStore for CollidingStore {
    async fn login(&self, login: &LoginWrite<'_>) -> Result<LoginOutcome, StoreError> {
        match self.refusal() {
            Some(err) => Err(err),
            None => self.inner.login(login).await,
        }
    }
}

impl RefreshStore for CollidingStore {
    async fn logout(&self, key: &TokenKey, session: &Session) -> Result<(), StoreError> {
        self.inner.logout(key, session).await
    }

    async fn refresh(
        &self,
        refresh: &crate::ports::sessions::RefreshWrite<'_>,
    ) -> Result<crate::ports::sessions::RefreshOutcome, StoreError> {
        self.inner.refresh(refresh).await
    }
}

/// Accounts and the log as the memory store keeps them, or down with the rest.
macro_rules! accounts_and_log_of_inner {
    ($store:ty) => {
        impl AccountStore for $store {
            async fn account(&self, user_id: &UserId) -> Result<Option<Account>, StoreError> {
                self.inner.account(user_id).await
            }
            async fn account_by_identity(
                &self,
                identity: crate::ports::accounts::IdentityQuery<'_>,
            ) -> Result<Option<Account>, StoreError> {
                self.inner.account_by_identity(identity).await
            }
            async fn account_by_unionid(
                &self,
                unionid: &str,
            ) -> Result<Option<Account>, StoreError> {
                self.inner.account_by_unionid(unionid).await
            }
            async fn bind_phone(
                &self,
                user_id: &UserId,
                phone: &BoundPhone,
            ) -> Result<bool, StoreError> {
                self.inner.bind_phone(user_id, phone).await
            }
            async fn delete_account(
                &self,
                user_id: &UserId,
                log: Option<&LogEntry>,
            ) -> Result<bool, StoreError> {
                self.inner.delete_account(user_id, log).await
            }
            async fn set_status(
                &self,
                user_id: &UserId,
                status: AccountStatus,
            ) -> Result<bool, StoreError> {
                self.inner.set_status(user_id, status).await
            }
            async fn merge(
                &self,
                keep: &UserId,
                from: &UserId,
                log: Option<&LogEntry>,
            ) -> Result<crate::ports::accounts::MergeOutcome, StoreError> {
                self.inner.merge(keep, from, log).await
            }
            async fn claim_legacy_unionids(
                &self,
            ) -> Result<crate::ports::accounts::ClaimReport, StoreError> {
                self.inner.claim_legacy_unionids().await
            }
        }

        impl LoginLog for $store {
            async fn append(&self, entry: &LogEntry) -> Result<(), StoreError> {
                self.inner.append(entry).await
            }
            async fn entries(
                &self,
                user_id: &UserId,
                limit: usize,
            ) -> Result<Vec<LogEntry>, StoreError> {
                self.inner.entries(user_id, limit).await
            }
        }
    };
}

accounts_and_log_of_inner!(CollidingStore);

/// The published keys as the memory store keeps them.
macro_rules! published_keys_of_inner {
    ($store:ty) => {
        impl PublicKeyStore for $store {
            async fn published_keys(
                &self,
            ) -> Result<Vec<crate::domain::jwt::PublishedKey>, StoreError> {
                self.inner.published_keys().await
            }
            async fn publish(
                &self,
                keys: &[crate::domain::jwt::KeyVersion],
                now: i64,
            ) -> Result<Vec<crate::domain::jwt::PublishedKey>, StoreError> {
                self.inner.publish(keys, now).await
            }
            async fn unpublish_all_but(&self, kids: &[&str]) -> Result<(), StoreError> {
                self.inner.unpublish_all_but(kids).await
            }
        }
    };
}

published_keys_of_inner!(CollidingStore);

fn settings() -> LoginSettings {
    LoginSettings {
        apps: apps(),
        session_ttl_seconds: 600,
        retry: RetryPolicy::default(),
        log_retention_days: 180,
        risk: crate::domain::risk::RiskPolicy::default(),
    }
}

fn login_with(
    script: Vec<Result<WxSession, WeChatError>>,
) -> Login<MemorySessionStore, InProcessWeChat, StaticSecrets> {
    Login::new(
        MemorySessionStore::new(),
        scripted(script),
        static_secret("APPSECRET-VALUE"),
        settings(),
    )
}

fn request(method: &str, path: &str) -> ApiRequest {
    ApiRequest::new(method, path, Deadline::after(ANSWER_WITHIN))
}

fn json_of(response: &ApiResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap()
}

fn assert_error(response: &ApiResponse, status: u16, code: &str) {
    let body = json_of(response);
    assert_eq!(
        (response.status, body["error"].as_str()),
        (status, Some(code)),
        "{body}"
    );
}

async fn post_login(handler: &impl Handler, body: &str) -> ApiResponse {
    handler
        .call(request("POST", "/login").with_body(body))
        .await
}

/// Logs in through `login` and returns the token.
async fn logged_in<S: LoginFunctionStore, W: WeChatApi, K: SecretSource>(
    login: &Login<S, W, K>,
) -> String {
    let response = post_login(login, r#"{"code":"c1"}"#).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    json_of(&response)["token"].as_str().unwrap().to_owned()
}

#[tokio::test(start_paused = true)]
async fn login_returns_a_token_that_keys_the_stored_session() {
    let login = login_with(vec![]);
    let response = post_login(&login, r#"{"code":"081abcDEF"}"#).await;
    assert_eq!(response.status, 200);
    let body = json_of(&response);
    assert_eq!(body["expiresIn"], 600);
    assert_eq!(body["openid"], "oOPENID123456");
    assert_eq!(body["unionid"], "uUNION");
    assert_eq!(body["newUser"], true);
    assert_eq!(body["appid"], APPID);
    assert_eq!(body.as_object().unwrap().len(), 7);
    let token = SessionToken::parse(body["token"].as_str().unwrap()).unwrap();
    let stored = login.store.get(&token.key()).await.unwrap().unwrap();
    assert_eq!(body["userId"], stored.user_id.as_str());
    assert_eq!(stored.session_key, Some(session_key()));
    assert_eq!(stored.expires_at - stored.created_at, 600);
    assert!((stored.created_at - epoch_seconds()).abs() <= 1);
    let text = String::from_utf8_lossy(&response.body);
    assert!(!text.contains(session_key().expose()) && !text.contains("APPSECRET-VALUE"));
}

#[tokio::test(start_paused = true)]
async fn login_without_unionid_omits_it() {
    let login = login_with(vec![Ok(WxSession {
        unionid: None,
        ..wx_session()
    })]);
    let body = json_of(&post_login(&login, r#"{"code":"c"}"#).await);
    assert!(body.get("unionid").is_none(), "{body}");
}

#[tokio::test(start_paused = true)]
async fn login_checks_size_then_method_then_fields() {
    let login = login_with(vec![]);
    let huge = format!(r#"{{"code":"{}"}}"#, "a".repeat(MAX_BODY_BYTES));
    assert_error(
        &login
            .call(request("GET", "/login").with_body(huge.clone()))
            .await,
        413,
        "payload_too_large",
    );
    assert_error(&post_login(&login, &huge).await, 413, "payload_too_large");
    let wrong_method = login
        .call(request("GET", "/login").with_body("not json"))
        .await;
    assert_error(&wrong_method, 405, "method_not_allowed");
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    for body in [
        "",
        "not json",
        "[]",
        "{}",
        r#"{"code":""}"#,
        r#"{"code":null}"#,
        r#"{"code":123}"#,
        r#"{"code":"has space"}"#,
        r#"{"code":"ünicode"}"#,
        r#"{"code":"tab	"}"#,
    ] {
        assert_error(&post_login(&login, body).await, 400, "invalid_request");
    }
    let long = format!(r#"{{"code":"{}"}}"#, "a".repeat(129));
    assert_error(&post_login(&login, &long).await, 400, "invalid_request");
    let longest = format!(r#"{{"code":"{}"}}"#, "~".repeat(128));
    assert_eq!(post_login(&login, &longest).await.status, 200);
    assert_eq!(
        login.wechat.calls.load(Ordering::SeqCst),
        1,
        "only the valid code reached WeChat"
    );
}

#[tokio::test(start_paused = true)]
async fn wechat_errcodes_map_to_the_contract() {
    for (err, status, code) in [
        (WeChatError::InvalidCode(40029), 401, "invalid_code"),
        (WeChatError::InvalidCode(40163), 401, "invalid_code"),
        (WeChatError::Blocked, 403, "login_blocked"),
        (WeChatError::RateLimited, 429, "rate_limited"),
        (WeChatError::Other(40013), 502, "wechat_error"),
        (WeChatError::Malformed("not JSON"), 502, "wechat_error"),
    ] {
        let login = login_with(vec![Err(err.clone())]);
        let response = post_login(&login, r#"{"code":"c"}"#).await;
        assert_error(&response, status, code);
        assert_eq!(
            login.wechat.calls.load(Ordering::SeqCst),
            1,
            "{err:?} is not retried"
        );
        assert_eq!(response.header("retry-after").is_some(), status == 429);
    }
}

#[tokio::test(start_paused = true)]
async fn busy_wechat_is_retried_then_503() {
    let login = login_with(vec![
        Err(WeChatError::Busy),
        Err(WeChatError::Busy),
        Err(WeChatError::Busy),
    ]);
    let response = post_login(&login, r#"{"code":"c"}"#).await;
    assert_error(&response, 503, "upstream_unavailable");
    assert_eq!(response.header("retry-after"), Some("2"));
    assert_eq!(login.wechat.calls.load(Ordering::SeqCst), 3);

    let login = login_with(vec![
        Err(WeChatError::Busy),
        Err(WeChatError::Transport("reset".into())),
    ]);
    assert_eq!(post_login(&login, r#"{"code":"c"}"#).await.status, 200);
    assert_eq!(login.wechat.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn refused_appsecret_is_refetched_once() {
    let login = Login::new(
        MemorySessionStore::new(),
        scripted(vec![Err(WeChatError::BadCredential(40125))]),
        RotatingSecret::default(),
        settings(),
    );
    assert_eq!(post_login(&login, r#"{"code":"c"}"#).await.status, 200);
    assert_eq!(login.secrets.refreshed.load(Ordering::SeqCst), 1);
    let seen = login.wechat.credentials_seen.lock().unwrap().clone();
    let with = |secret: &str| (APPID.to_owned(), secret.to_owned());
    assert_eq!(seen, [with("old"), with("new")]);

    let login = Login::new(
        MemorySessionStore::new(),
        scripted(vec![
            Err(WeChatError::BadCredential(40001)),
            Err(WeChatError::BadCredential(40001)),
        ]),
        RotatingSecret::default(),
        settings(),
    );
    assert_error(
        &post_login(&login, r#"{"code":"c"}"#).await,
        502,
        "wechat_error",
    );
    assert_eq!(
        login.secrets.refreshed.load(Ordering::SeqCst),
        1,
        "refreshed once, not in a loop"
    );
    assert_eq!(login.wechat.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn secret_store_down_is_503_and_wechat_is_not_called() {
    let login = Login::new(
        MemorySessionStore::new(),
        scripted(vec![]),
        DownSecret,
        settings(),
    );
    assert_error(
        &post_login(&login, r#"{"code":"c"}"#).await,
        503,
        "upstream_unavailable",
    );
    assert_eq!(login.wechat.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn token_collision_draws_a_new_token() {
    let store = CollidingStore::default();
    store.collisions.store(2, Ordering::SeqCst);
    let login = Login::new(store, scripted(vec![]), static_secret("s"), settings());
    let token = logged_in(&login).await;
    let key = SessionToken::parse(&token).unwrap().key();
    assert!(login.store.get(&key).await.unwrap().is_some());

    let store = CollidingStore::default();
    store.collisions.store(3, Ordering::SeqCst);
    let login = Login::new(store, scripted(vec![]), static_secret("s"), settings());
    assert_error(
        &post_login(&login, r#"{"code":"c"}"#).await,
        503,
        "upstream_unavailable",
    );
}

#[tokio::test(start_paused = true)]
async fn session_table_down_is_503_everywhere() {
    let login = Login::new(
        CollidingStore {
            down: true,
            ..Default::default()
        },
        scripted(vec![]),
        static_secret("s"),
        settings(),
    );
    assert_error(
        &post_login(&login, r#"{"code":"c"}"#).await,
        503,
        "upstream_unavailable",
    );
    let token = SessionToken::generate().unwrap();
    let check = CheckSession::new(CollidingStore {
        down: true,
        ..Default::default()
    });
    let response = check
        .call(request("GET", "/session").with_bearer(token.expose()))
        .await;
    assert_error(&response, 503, "upstream_unavailable");
    assert_eq!(response.header("retry-after"), Some("2"));
}

/// Logs in, then hands the store to `make` to build another function's handler.
async fn session_for<H>(make: impl FnOnce(MemorySessionStore) -> H) -> (H, String) {
    let login = login_with(vec![]);
    let token = logged_in(&login).await;
    (make(login.store), token)
}

#[tokio::test(start_paused = true)]
async fn get_session_reports_validity() {
    let (check, token) = session_for(CheckSession::new).await;
    let response = check
        .call(request("GET", "/session").with_bearer(&token))
        .await;
    assert_eq!(response.status, 200);
    let body = json_of(&response);
    assert_eq!(body["valid"], true);
    assert_eq!(body["openid"], "oOPENID123456");
    assert_eq!(body["unionid"], "uUNION");
    let left = body["expiresIn"].as_i64().unwrap();
    assert!((599..=600).contains(&left), "{left}");
}

#[tokio::test(start_paused = true)]
async fn session_routes_refuse_bad_tokens_before_reading_the_body() {
    let (check, _) = session_for(CheckSession::new).await;
    let unknown = SessionToken::generate().unwrap();
    for req in [
        request("GET", "/session"),
        request("GET", "/session").with_header("authorization", "Bearer"),
        request("GET", "/session").with_bearer("not-a-token"),
        request("GET", "/session").with_bearer(unknown.expose()),
        request("POST", "/session")
            .with_bearer(unknown.expose())
            .with_body("garbage"),
    ] {
        assert_error(&check.call(req).await, 401, "unauthorized");
    }
    assert_error(
        &check.call(request("PUT", "/session")).await,
        405,
        "method_not_allowed",
    );
}

#[tokio::test(start_paused = true)]
async fn expired_session_is_refused_though_present() {
    let store = MemorySessionStore::new();
    let now = epoch_seconds();
    let token = store
        .insert_new(Session {
            user_id: UserId::generate().unwrap(),
            appid: Some(app_id()),
            openid: "o".into(),
            unionid: None,
            session_key: Some(session_key()),
            session_key_expires_at: None,
            family: None,
            created_at: now - 700,
            expires_at: now - 100,
        })
        .unwrap();
    let check = CheckSession::new(store);
    assert_error(
        &check
            .call(request("GET", "/session").with_bearer(token.expose()))
            .await,
        401,
        "unauthorized",
    );
}

fn signature(raw_data: &str, key: &SessionKey) -> String {
    use sha1::{Digest, Sha1};
    hex::encode(Sha1::digest(format!("{raw_data}{}", key.expose())))
}

#[tokio::test(start_paused = true)]
async fn post_session_verifies_raw_data() {
    let (check, token) = session_for(CheckSession::new).await;
    let raw = r#"{"nickName":"Band","gender":1}"#;
    let post = |body: Value| {
        check.call(
            request("POST", "/session")
                .with_bearer(&token)
                .with_body(body.to_string()),
        )
    };

    let good = post(json!({"rawData": raw, "signature": signature(raw, &session_key())})).await;
    assert_eq!(good.status, 200);
    let body = json_of(&good);
    assert_eq!(body["userInfo"], json!({"nickName":"Band","gender":1}));
    assert_eq!(body["valid"], true);

    let upper =
        post(json!({"rawData": raw, "signature": signature(raw, &session_key()).to_uppercase()}))
            .await;
    assert_eq!(upper.status, 200);

    let other_key = SessionKey::new("AAAAAAAAAAAAAAAAAAAAAA==");
    assert_error(
        &post(json!({"rawData": raw, "signature": signature(raw, &other_key)})).await,
        401,
        "signature_mismatch",
    );

    for body in [
        json!({"rawData": raw}),
        json!({"signature": signature(raw, &session_key())}),
        json!({"rawData": raw, "signature": "abc"}),
        json!({"rawData": raw, "signature": "z".repeat(40)}),
        json!({"rawData": raw, "signature": "a".repeat(41)}),
        json!({"rawData": "", "signature": "a".repeat(40)}),
        json!({"rawData": "x".repeat(8193), "signature": "a".repeat(40)}),
        json!({"rawData": "not json", "signature": signature("not json", &session_key())}),
    ] {
        assert_error(&post(body.clone()).await, 400, "invalid_request");
    }
}

fn phone_payload(plaintext: &str) -> Value {
    let iv = [5u8; 16];
    json!({
        "encryptedData": STANDARD.encode(encrypt(&KEY, &iv, plaintext.as_bytes())),
        "iv": STANDARD.encode(iv),
    })
}

fn phone_json() -> String {
    json!({"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86","watermark":{"appid":APPID,"timestamp":epoch_seconds()}}).to_string()
}

#[tokio::test(start_paused = true)]
async fn phone_decrypts_with_the_sessions_key() {
    let (phone, token) = session_for(|store| DecryptPhone::new(store, apps())).await;
    let response = phone
        .call(
            request("POST", "/phone")
                .with_bearer(&token)
                .with_body(phone_payload(&phone_json()).to_string()),
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        json_of(&response),
        json!({"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86"})
    );
}

#[tokio::test(start_paused = true)]
async fn phone_decrypt_failures_share_one_body() {
    let (phone, token) = session_for(|store| DecryptPhone::new(store, apps())).await;
    let post = |body: Value| {
        phone.call(
            request("POST", "/phone")
                .with_bearer(&token)
                .with_body(body.to_string()),
        )
    };
    let mut bodies = Vec::new();
    let mut tampered = phone_payload(&phone_json());
    let mut bytes = STANDARD
        .decode(tampered["encryptedData"].as_str().unwrap())
        .unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    tampered["encryptedData"] = json!(STANDARD.encode(&bytes));
    for body in [
        tampered,
        phone_payload(&phone_json().replace("wxTESTAPPID0000001", "wxOTHERAPP000001")),
        phone_payload("not json at all"),
        phone_payload(r#"{"watermark":{"appid":"wxTESTAPPID0000001"}}"#),
    ] {
        let response = post(body).await;
        assert_error(&response, 422, "decrypt_failed");
        bodies.push(response.body);
    }
    assert!(
        bodies.windows(2).all(|pair| pair[0] == pair[1]),
        "no padding oracle"
    );
}

#[tokio::test(start_paused = true)]
async fn phone_field_errors_are_400_after_the_token() {
    let (phone, token) = session_for(|store| DecryptPhone::new(store, apps())).await;
    let good = phone_payload(&phone_json());
    let post = |body: Value| {
        phone.call(
            request("POST", "/phone")
                .with_bearer(&token)
                .with_body(body.to_string()),
        )
    };
    for body in [
        json!({}),
        json!({"iv": good["iv"]}),
        json!({"encryptedData": good["encryptedData"]}),
        json!({"encryptedData": "", "iv": good["iv"]}),
        json!({"encryptedData": good["encryptedData"], "iv": 5}),
        json!({"encryptedData": "!!!", "iv": good["iv"]}),
        json!({"encryptedData": good["encryptedData"], "iv": STANDARD.encode([1u8; 15])}),
        json!({"encryptedData": good["encryptedData"], "iv": STANDARD.encode([1u8; 17])}),
        json!({"encryptedData": STANDARD.encode([1u8; 20]), "iv": good["iv"]}),
        json!({"encryptedData": "A".repeat(8196), "iv": good["iv"]}),
        json!({"encryptedData": good["encryptedData"].as_str().unwrap().replace('+', " "), "iv": "r7BX+XKkLb8qrSNn05n0qiA=="}),
    ] {
        assert_error(&post(body.clone()).await, 400, "invalid_request");
    }
    let spaced =
        post(json!({"encryptedData": good["encryptedData"], "iv": "r7BX XKkLb8qrSNn05n0qiA=="}))
            .await;
    assert!(
        json_of(&spaced)["message"]
            .as_str()
            .unwrap()
            .contains("'+'")
    );
    // Unpadded URL-safe base64 is accepted.
    let url_safe = json!({
        "encryptedData": good["encryptedData"].as_str().unwrap().replace('+', "-").replace('/', "_").trim_end_matches('=').to_owned(),
        "iv": good["iv"].as_str().unwrap().trim_end_matches('='),
    });
    assert_eq!(post(url_safe).await.status, 200);
    // Without a token the same bad body is a 401: the token is checked first.
    let no_token = phone.call(request("POST", "/phone").with_body("{}")).await;
    assert_error(&no_token, 401, "unauthorized");
    assert_error(
        &phone.call(request("GET", "/phone")).await,
        405,
        "method_not_allowed",
    );
}

#[tokio::test(start_paused = true)]
async fn logout_deletes_the_session() {
    let (check, token) = session_for(CheckSession::new).await;
    let response = check
        .call(request("DELETE", "/session").with_bearer(&token))
        .await;
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
    assert_error(
        &check
            .call(request("GET", "/session").with_bearer(&token))
            .await,
        401,
        "unauthorized",
    );
    assert_error(
        &check
            .call(request("DELETE", "/session").with_bearer(&token))
            .await,
        401,
        "unauthorized",
    );
}

#[tokio::test(start_paused = true)]
async fn stale_watermarks_are_refused_unless_the_check_is_off() {
    let stale = json!({"phoneNumber":"1","purePhoneNumber":"1","countryCode":"86","watermark":{"appid":APPID,"timestamp":epoch_seconds() - 301}}).to_string();
    let (phone, token) = session_for(|store| DecryptPhone::new(store, apps())).await;
    let post = || {
        request("POST", "/phone")
            .with_bearer(&token)
            .with_body(phone_payload(&stale).to_string())
    };
    assert_error(&phone.call(post()).await, 422, "decrypt_failed");
    let phone = phone.with_watermark_max_age(None);
    assert_eq!(phone.call(post()).await.status, 200);
    let phone = phone.with_watermark_max_age(Some(600));
    assert_eq!(phone.call(post()).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn open_data_answers_the_payload_without_its_watermark() {
    let (phone, token) = session_for(|store| DecryptPhone::new(store, apps())).await;
    let share =
        json!({"openGId":"tGabc123","watermark":{"appid":APPID,"timestamp":epoch_seconds()}})
            .to_string();
    let response = phone
        .call(
            request("POST", "/open-data")
                .with_bearer(&token)
                .with_body(phone_payload(&share).to_string()),
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(json_of(&response), json!({"openGId": "tGabc123"}));
    let foreign = share.replace(APPID, "wxOTHERAPP000001");
    let response = phone
        .call(
            request("POST", "/open-data")
                .with_bearer(&token)
                .with_body(phone_payload(&foreign).to_string()),
        )
        .await;
    assert_error(&response, 422, "decrypt_failed");
}

#[tokio::test(start_paused = true)]
async fn a_new_login_revokes_the_users_previous_session() {
    let login = login_with(vec![]);
    let first = logged_in(&login).await;
    let second = logged_in(&login).await;
    let key = |t: &str| SessionToken::parse(t).unwrap().key();
    assert!(
        login.store.get(&key(&first)).await.unwrap().is_none(),
        "first session revoked"
    );
    assert!(login.store.get(&key(&second)).await.unwrap().is_some());

    let login = login_with(vec![]).with_single_session(false);
    let first = logged_in(&login).await;
    let second = logged_in(&login).await;
    assert!(
        login.store.get(&key(&first)).await.unwrap().is_some(),
        "kept when SINGLE_SESSION=false"
    );
    assert!(login.store.get(&key(&second)).await.unwrap().is_some());
}

/// WeChat's access-token calls as the handlers see them: one scripted answer.
struct ScriptedServerApi {
    phone: Result<PhoneInfo, UpstreamError>,
    key_status: Result<SessionKeyStatus, UpstreamError>,
    seen: Mutex<Vec<String>>,
}

impl ScriptedServerApi {
    fn answering(
        phone: Result<PhoneInfo, UpstreamError>,
        key_status: Result<SessionKeyStatus, UpstreamError>,
    ) -> Self {
        Self {
            phone,
            key_status,
            seen: Mutex::new(Vec::new()),
        }
    }
}

impl WeChatServerApi for ScriptedServerApi {
    async fn phone_number(
        &self,
        _: &crate::domain::app::AppId,
        code: &str,
        openid: &str,
        _: Deadline,
    ) -> Result<PhoneInfo, UpstreamError> {
        self.seen.lock().unwrap().push(format!("{code} {openid}"));
        self.phone.clone()
    }

    async fn check_session_key(
        &self,
        _: &crate::domain::app::AppId,
        openid: &str,
        session_key: &SessionKey,
        _: Deadline,
    ) -> Result<SessionKeyStatus, UpstreamError> {
        assert_eq!(session_key, &self::session_key());
        self.seen.lock().unwrap().push(openid.to_owned());
        self.key_status.clone()
    }

    async fn risk_rank(
        &self,
        _: &crate::domain::app::AppId,
        _: &str,
        _: &str,
        _: Deadline,
    ) -> Result<crate::domain::wechat::RiskRank, UpstreamError> {
        Err(UpstreamError::Unavailable(Upstream::WeChat))
    }
}

fn phone_info(appid: &str) -> PhoneInfo {
    PhoneInfo {
        phone: crate::domain::phone::PhoneNumber {
            phone_number: "+86 13800138000".into(),
            pure_phone_number: "13800138000".into(),
            country_code: "86".into(),
        },
        watermark_appid: Some(appid.into()),
    }
}

#[tokio::test(start_paused = true)]
async fn phone_by_code_asks_wechat_for_the_sessions_openid() {
    let api = ScriptedServerApi::answering(Ok(phone_info(APPID)), Ok(SessionKeyStatus::Valid));
    let (phone, token) =
        session_for(|store| DecryptPhone::new(store, apps()).with_wechat(api)).await;
    let response = phone
        .call(
            request("POST", "/phone")
                .with_bearer(&token)
                .with_body(r#"{"code":"phone-code-1"}"#),
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        json_of(&response),
        json!({"phoneNumber":"+86 13800138000","purePhoneNumber":"13800138000","countryCode":"86"})
    );
    assert_eq!(
        *phone.wechat.seen.lock().unwrap(),
        ["phone-code-1 oOPENID123456"]
    );
}

#[tokio::test(start_paused = true)]
async fn phone_by_code_errors() {
    for (answer, status, code) in [
        (
            Err(WeChatError::InvalidCode(40029).into()),
            401,
            "invalid_code",
        ),
        (Err(WeChatError::RateLimited.into()), 429, "rate_limited"),
        (
            Err(UpstreamError::Unavailable(Upstream::WeChat)),
            503,
            "upstream_unavailable",
        ),
        (Ok(phone_info("wxSOMEONEELSE")), 502, "wechat_error"),
    ] {
        let api = ScriptedServerApi::answering(answer, Ok(SessionKeyStatus::Valid));
        let (phone, token) =
            session_for(|store| DecryptPhone::new(store, apps()).with_wechat(api)).await;
        let post = |body: &str| {
            phone.call(
                request("POST", "/phone")
                    .with_bearer(&token)
                    .with_body(body.to_owned()),
            )
        };
        assert_error(&post(r#"{"code":"c1"}"#).await, status, code);
        // The client's own mistakes are 400 and never reach WeChat.
        for body in [
            r#"{"code":""}"#,
            r#"{"code":"has space"}"#,
            r#"{"code":7}"#,
            r#"{"code":"c1","encryptedData":"AAAA","iv":"AAAA"}"#,
        ] {
            assert_error(&post(body).await, 400, "invalid_request");
        }
        assert_error(
            &post(&format!(r#"{{"code":"{}"}}"#, "c".repeat(129))).await,
            400,
            "invalid_request",
        );
        assert_eq!(phone.wechat.seen.lock().unwrap().len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn phone_by_code_without_an_access_token_is_503() {
    let (phone, token) = session_for(|store| DecryptPhone::new(store, apps())).await;
    let response = phone
        .call(
            request("POST", "/phone")
                .with_bearer(&token)
                .with_body(r#"{"code":"c1"}"#),
        )
        .await;
    assert_error(&response, 503, "upstream_unavailable");
}

#[tokio::test(start_paused = true)]
async fn verify_wechat_checks_the_session_key_with_wechat() {
    let api = ScriptedServerApi::answering(Ok(phone_info(APPID)), Ok(SessionKeyStatus::Valid));
    let (check, token) = session_for(|store| CheckSession::new(store).with_wechat(api)).await;
    let get = |query: Option<&str>| {
        let mut req = request("GET", "/session").with_bearer(&token);
        req.query = query.map(str::to_owned);
        check.call(req)
    };
    assert_eq!(get(None).await.status, 200);
    assert!(check.wechat.seen.lock().unwrap().is_empty());
    let response = get(Some("verify=wechat")).await;
    assert_eq!(response.status, 200);
    assert_eq!(json_of(&response)["valid"], true);
    assert_eq!(*check.wechat.seen.lock().unwrap(), ["oOPENID123456"]);
    assert_error(&get(Some("verify=yes")).await, 400, "invalid_request");
    assert_eq!(check.wechat.seen.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_session_key_wechat_dropped_ends_the_session() {
    let api = ScriptedServerApi::answering(Ok(phone_info(APPID)), Ok(SessionKeyStatus::Invalid));
    let (check, token) = session_for(|store| CheckSession::new(store).with_wechat(api)).await;
    let mut req = request("GET", "/session").with_bearer(&token);
    req.query = Some("verify=wechat".into());
    assert_error(&check.call(req).await, 401, "session_key_invalid");
    assert_error(
        &check
            .call(request("GET", "/session").with_bearer(&token))
            .await,
        401,
        "unauthorized",
    );
}

/// A memory store whose login writes never answer, as a DynamoDB call that is
/// slow or whose answer is lost. With `commits`, the write lands first (a
/// transaction already sent commits though its caller gave up on it).
struct LostWrites {
    inner: MemorySessionStore,
    commits: bool,
    /// When the write started (tokio's clock).
    started: Mutex<Option<tokio::time::Instant>>,
}

impl LostWrites {
    fn new(commits: bool) -> Self {
        Self {
            inner: MemorySessionStore::new(),
            commits,
            started: Mutex::new(None),
        }
    }
}

impl SessionStore for LostWrites {
    async fn get(&self, key: &TokenKey) -> Result<Option<Session>, StoreError> {
        self.inner.get(key).await
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}

impl LoginStore for LostWrites {
    async fn login(&self, login: &LoginWrite<'_>) -> Result<LoginOutcome, StoreError> {
        *self.started.lock().unwrap() = Some(tokio::time::Instant::now());
        if self.commits {
            self.inner.login(login).await?;
        }
        std::future::pending().await
    }
}

impl RefreshStore for LostWrites {
    async fn logout(&self, key: &TokenKey, session: &Session) -> Result<(), StoreError> {
        self.inner.logout(key, session).await
    }

    async fn refresh(
        &self,
        refresh: &crate::ports::sessions::RefreshWrite<'_>,
    ) -> Result<crate::ports::sessions::RefreshOutcome, StoreError> {
        self.inner.refresh(refresh).await
    }
}

published_keys_of_inner!(LostWrites);

fn login_over<S: LoginFunctionStore>(
    store: S,
    wechat: InProcessWeChat,
) -> Login<S, InProcessWeChat, StaticSecrets> {
    Login::new(store, wechat, static_secret("s"), settings())
}

/// A WeChat that never answers gets its own budget, not the whole 8 seconds:
/// the end belongs to the session write and its read-back.
#[tokio::test(start_paused = true)]
async fn wechat_retries_leave_the_session_write_its_budget() {
    let wechat = scripted(vec![]);
    wechat.stall_next.store(u32::MAX, Ordering::SeqCst);
    let login = login_over(MemorySessionStore::new(), wechat);
    let started = tokio::time::Instant::now();
    let response = post_login(&login, r#"{"code":"c"}"#).await;
    assert_error(&response, 503, "upstream_unavailable");
    assert_eq!(
        started.elapsed(),
        ANSWER_WITHIN - SESSION_WRITE_BUDGET - READ_BACK_BUDGET
    );
    assert_eq!(login.wechat.calls.load(Ordering::SeqCst), 2);
}

/// The write's answer is lost but the write committed (a DynamoDB transaction
/// is not cancelled by giving up on it): one consistent read finds the session,
/// and the login answers 200 with a token that works.
#[tokio::test(start_paused = true)]
async fn a_committed_write_whose_answer_was_lost_is_a_login() {
    let login = login_over(LostWrites::new(true), scripted(vec![]));
    let started = tokio::time::Instant::now();
    let response = post_login(&login, r#"{"code":"c"}"#).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(started.elapsed(), ANSWER_WITHIN - READ_BACK_BUDGET);
    let token = json_of(&response)["token"].as_str().unwrap().to_owned();
    let check = CheckSession::new(login.store.inner);
    let response = check
        .call(request("GET", "/session").with_bearer(&token))
        .await;
    assert_eq!(response.status, 200);
}

#[tokio::test(start_paused = true)]
async fn a_write_that_did_not_commit_is_503_within_the_budget() {
    let login = login_over(LostWrites::new(false), scripted(vec![]));
    let started = tokio::time::Instant::now();
    let response = post_login(&login, r#"{"code":"c"}"#).await;
    assert_error(&response, 503, "upstream_unavailable");
    assert!(started.elapsed() <= ANSWER_WITHIN);
    // The write started right after WeChat answered, with its whole budget.
    let write_started = login.store.started.lock().unwrap().unwrap();
    assert_eq!(write_started, started);
}

/// WeChat's slowest answer still leaves the write its budget: the write starts
/// no later than `SESSION_WRITE_BUDGET + READ_BACK_BUDGET` before the end.
#[tokio::test(start_paused = true)]
async fn the_write_starts_with_its_budget_after_the_slowest_wechat() {
    // First attempt lost; the second is the last WeChat's budget allows.
    let wechat = scripted(vec![]);
    wechat.stall_next.store(1, Ordering::SeqCst);
    let login = login_over(LostWrites::new(true), wechat);
    let started = tokio::time::Instant::now();
    let response = post_login(&login, r#"{"code":"c"}"#).await;
    assert_eq!(response.status, 200);
    let write_started = login.store.started.lock().unwrap().unwrap();
    assert!(
        write_started - started <= ANSWER_WITHIN - SESSION_WRITE_BUDGET - READ_BACK_BUDGET,
        "{:?}",
        write_started - started
    );
    assert_eq!(login.wechat.calls.load(Ordering::SeqCst), 2);
}

/// The account routes on the memory store: GET /account, DELETE /account, a
/// disabled account's login, a bad device refused before WeChat is called.
#[tokio::test(start_paused = true)]
async fn accounts_through_the_handlers() {
    let login = login_with(vec![]);
    let first = json_of(&post_login(&login, r#"{"code":"c1"}"#).await);
    assert_eq!(first["newUser"], true);
    let again = json_of(&post_login(&login, r#"{"code":"c2"}"#).await);
    assert_eq!(
        (again["newUser"].clone(), again["userId"].clone()),
        (json!(false), first["userId"].clone())
    );
    let token = again["token"].as_str().unwrap().to_owned();
    let calls = login.wechat.calls.load(Ordering::SeqCst);
    let bad_device = post_login(&login, r#"{"code":"c3","device":{"model":["x"]}}"#).await;
    assert_error(&bad_device, 400, "invalid_request");
    assert_eq!(
        login.wechat.calls.load(Ordering::SeqCst),
        calls,
        "refused before WeChat"
    );

    let check = CheckSession::new(login.store);
    let account = check
        .call(request("GET", "/account").with_bearer(&token))
        .await;
    assert_eq!(json_of(&account)["userId"], first["userId"]);
    let user_id = UserId::parse(first["userId"].as_str().unwrap()).unwrap();
    assert!(
        check
            .store
            .set_status(&user_id, AccountStatus::Disabled)
            .await
            .unwrap()
    );
    assert_error(
        &check
            .call(request("GET", "/session").with_bearer(&token))
            .await,
        401,
        "unauthorized",
    );

    let login = Login::new(
        check.store,
        scripted(vec![]),
        static_secret("s"),
        settings(),
    );
    assert_error(
        &post_login(&login, r#"{"code":"c4"}"#).await,
        403,
        "account_disabled",
    );
    let refused = login.store.log();
    assert_eq!(
        refused.last().map(|entry| entry.event),
        Some(crate::domain::login_log::LogEvent::LoginRefused)
    );
    assert!(
        login
            .store
            .set_status(&user_id, AccountStatus::Active)
            .await
            .unwrap()
    );
    let back = json_of(&post_login(&login, r#"{"code":"c5"}"#).await);
    let token = back["token"].as_str().unwrap().to_owned();
    let check = CheckSession::new(login.store);
    let deleted = check
        .call(request("DELETE", "/account").with_bearer(&token))
        .await;
    assert_eq!(deleted.status, 204);
    assert_error(
        &check
            .call(request("GET", "/account").with_bearer(&token))
            .await,
        401,
        "unauthorized",
    );
    assert_error(
        &check
            .call(request("PUT", "/account").with_bearer(&token))
            .await,
        405,
        "method_not_allowed",
    );
}

mod refresh;
