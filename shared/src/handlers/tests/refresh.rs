//! Refresh tokens and JWTs through the handlers, on the memory store.

use std::sync::Arc;

use super::*;
use crate::domain::jwt::{DEFAULT_AUDIENCE, JwtSettings, Signer, SigningKey, generate_key};
use crate::domain::login_log::LogEvent;
use crate::domain::refresh::{RefreshSettings, RefreshToken};
use crate::ports::sessions::{LoginStore, RefreshStore};
use crate::ports::sessions::{RefreshOutcome, RefreshWrite};
use crate::services::access::TokenCheck;
use crate::services::issuer::JwtIssuer;
use crate::services::login::READ_BACK_BUDGET;

type Store = Arc<MemorySessionStore>;

const ISSUER: &str = "https://auth.example.com";

fn jwt_settings() -> JwtSettings {
    JwtSettings {
        issuer: ISSUER.into(),
        audience: DEFAULT_AUDIENCE.into(),
    }
}

struct Api {
    store: Store,
    login: Login<Store, InProcessWeChat, StaticSecrets, Signer>,
    check: CheckSession<Store>,
}

fn dev_key(kid: &str) -> Signer {
    Signer {
        current: Some(SigningKey::from_secret(&generate_key(kid).unwrap()).unwrap()),
        ..Signer::default()
    }
}

async fn api(refresh: RefreshSettings, jwt: bool) -> Api {
    let store: Store = Arc::new(MemorySessionStore::new());
    let login = Login::new(
        Arc::clone(&store),
        InProcessWeChat::logging_in(wx_session(), vec![]),
        static_secret("s"),
        settings(),
    )
    .with_refresh(refresh);
    let login = match jwt {
        true => login.with_jwt(JwtIssuer::new(dev_key("k1"), jwt_settings(), app_id(), 0)),
        false => login,
    };
    login.load_signing_keys().await.unwrap();
    let check = CheckSession::new(Arc::clone(&store))
        .with_token_check(TokenCheck::new(Some(jwt_settings())));
    Api {
        store,
        login,
        check,
    }
}

fn grace(seconds: i64) -> RefreshSettings {
    RefreshSettings {
        grace_seconds: seconds,
        ..RefreshSettings::default()
    }
}

impl Api {
    async fn log_in(&self) -> Value {
        let response = post_login(&self.login, r#"{"code":"c1"}"#).await;
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        json_of(&response)
    }

    async fn refresh(&self, refresh_token: &str) -> ApiResponse {
        self.login
            .call(
                request("POST", "/refresh")
                    .with_body(json!({"refreshToken": refresh_token}).to_string()),
            )
            .await
    }

    async fn session(&self, token: &str) -> ApiResponse {
        self.check
            .call(request("GET", "/session").with_bearer(token))
            .await
    }
}

fn text<'a>(body: &'a Value, name: &str) -> &'a str {
    body[name].as_str().unwrap()
}

#[tokio::test]
async fn a_refresh_rotates_the_token_and_a_retry_within_the_grace_is_answered() {
    let api = api(grace(30), false).await;
    let login = api.log_in().await;
    assert_eq!(login["refreshExpiresIn"], 2_592_000);
    assert_eq!(text(&login, "refreshToken").len(), 67);
    assert_eq!(login.as_object().unwrap().len(), 9);

    let first = api.refresh(text(&login, "refreshToken")).await;
    assert_eq!(first.status, 200);
    let first = json_of(&first);
    assert_eq!(first["newUser"], false);
    assert_eq!(first["userId"], login["userId"]);
    assert_eq!(first["openid"], login["openid"]);
    assert_eq!(first["unionid"], "uUNION");
    assert_eq!(first["expiresIn"], 600);
    assert_ne!(first["refreshToken"], login["refreshToken"]);
    assert_ne!(first["token"], login["token"]);
    assert_eq!(api.session(text(&first, "token")).await.status, 200);

    // The answer was lost: the client retries with the spent token. The new
    // pair replaces the first one, which the client never had: a family
    // holds one live refresh token, so a replay cannot fork it.
    let retry = api.refresh(text(&login, "refreshToken")).await;
    assert_eq!(retry.status, 200);
    let retry = json_of(&retry);
    assert_eq!(api.session(text(&first, "token")).await.status, 401);
    assert_eq!(
        api.refresh(text(&first, "refreshToken")).await.status,
        401,
        "the replaced successor is unknown now, not a reuse"
    );
    assert_eq!(api.session(text(&retry, "token")).await.status, 200);
    // However often it is replayed within the grace, one token stays live.
    for _ in 0..5 {
        assert_eq!(api.refresh(text(&login, "refreshToken")).await.status, 200);
    }
    let last = json_of(&api.refresh(text(&login, "refreshToken")).await);
    assert_eq!(api.refresh(text(&retry, "refreshToken")).await.status, 401);
    assert_eq!(api.refresh(text(&last, "refreshToken")).await.status, 200);
    assert_eq!(api.session(text(&login, "token")).await.status, 200);
    let events: Vec<LogEvent> = api.store.log().iter().map(|e| e.event).collect();
    assert_eq!(
        events.iter().filter(|e| **e == LogEvent::Refresh).count(),
        9
    );
    // A replaced token is gone as if never issued (its answer was lost).
    assert!(!events.contains(&LogEvent::RefreshRefused));
}

/// A refused refresh of a token we issued (revoked with its family by a
/// logout, or spent and presented after its family went) leaves a trace in
/// its user's log; an unknown token belongs to no user and leaves none.
#[tokio::test]
async fn a_refused_refresh_of_a_known_token_is_logged() {
    let api = api(grace(30), false).await;
    let login = api.log_in().await;
    let first = json_of(&api.refresh(text(&login, "refreshToken")).await);
    let logout = api
        .check
        .call(request("DELETE", "/session").with_bearer(text(&first, "token")))
        .await;
    assert_eq!(logout.status, 204);
    let refused = |api: &Api| {
        api.store
            .log()
            .iter()
            .filter(|e| e.event == LogEvent::RefreshRefused)
            .map(|e| (e.user_id.to_string(), e.outcome.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(api.refresh(text(&first, "refreshToken")).await.status, 401);
    assert_eq!(api.refresh(text(&login, "refreshToken")).await.status, 401);
    let user = text(&login, "userId").to_owned();
    assert_eq!(
        refused(&api),
        vec![
            (user.clone(), "invalid_refresh_token".to_owned()),
            (user, "invalid_refresh_token".to_owned())
        ]
    );
    assert_eq!(api.refresh(&"x".repeat(67)).await.status, 401);
    assert_eq!(refused(&api).len(), 2, "an unknown token is nobody's");
}

#[tokio::test]
async fn reuse_after_the_grace_revokes_the_whole_family() {
    let api = api(grace(0), false).await;
    let login = api.log_in().await;
    let first = json_of(&api.refresh(text(&login, "refreshToken")).await);
    let reuse = api.refresh(text(&login, "refreshToken")).await;
    assert_error(&reuse, 401, "invalid_refresh_token");
    for token in [text(&login, "token"), text(&first, "token")] {
        assert_error(&api.session(token).await, 401, "unauthorized");
    }
    assert_error(
        &api.refresh(text(&first, "refreshToken")).await,
        401,
        "invalid_refresh_token",
    );
    assert!(
        api.store
            .log()
            .iter()
            .any(|e| e.event == LogEvent::RefreshReused)
    );
}

#[tokio::test]
async fn logout_and_a_later_login_revoke_the_family() {
    let api = api(RefreshSettings::default(), false).await;
    let login = api.log_in().await;
    let first = json_of(&api.refresh(text(&login, "refreshToken")).await);
    let logout = api
        .check
        .call(request("DELETE", "/session").with_bearer(text(&first, "token")))
        .await;
    assert_eq!(logout.status, 204);
    assert_error(
        &api.session(text(&login, "token")).await,
        401,
        "unauthorized",
    );
    assert_error(
        &api.refresh(text(&first, "refreshToken")).await,
        401,
        "invalid_refresh_token",
    );

    let again = api.log_in().await;
    let later = api.log_in().await;
    assert_error(
        &api.refresh(text(&again, "refreshToken")).await,
        401,
        "invalid_refresh_token",
    );
    assert_eq!(api.refresh(text(&later, "refreshToken")).await.status, 200);
}

#[tokio::test]
async fn refresh_body_errors_and_refresh_tokens_off() {
    let api = api(RefreshSettings::default(), false).await;
    for (body, status) in [
        ("{}", 400),
        (r#"{"refreshToken": ""}"#, 400),
        (r#"{"refreshToken": "short"}"#, 400),
        (r#"{"refreshToken": 7}"#, 400),
        ("not json", 400),
    ] {
        let response = api
            .login
            .call(request("POST", "/refresh").with_body(body))
            .await;
        assert_eq!(response.status, status, "{body}");
    }
    let unknown = RefreshToken::generate().unwrap();
    assert_error(
        &api.refresh(unknown.expose()).await,
        401,
        "invalid_refresh_token",
    );
    let get = api.login.call(request("GET", "/refresh")).await;
    assert_error(&get, 405, "method_not_allowed");

    let off = self::api(RefreshSettings::OFF, false).await;
    let login = off.log_in().await;
    assert!(login.get("refreshToken").is_none() && login.get("refreshExpiresIn").is_none());
    assert_error(
        &off.refresh(unknown.expose()).await,
        401,
        "invalid_refresh_token",
    );
}

#[tokio::test]
async fn a_disabled_account_is_refused_and_its_tokens_stay_revoked() {
    let api = api(RefreshSettings::default(), false).await;
    let login = api.log_in().await;
    let user_id = UserId::parse(text(&login, "userId")).unwrap();
    api.store
        .set_status(&user_id, AccountStatus::Disabled)
        .await
        .unwrap();
    assert_error(
        &api.refresh(text(&login, "refreshToken")).await,
        403,
        "account_disabled",
    );
    api.store
        .set_status(&user_id, AccountStatus::Active)
        .await
        .unwrap();
    assert_error(
        &api.refresh(text(&login, "refreshToken")).await,
        401,
        "invalid_refresh_token",
    );
}

#[tokio::test]
async fn a_refreshed_session_has_the_key_only_while_the_login_keeps_it() {
    let api = api(RefreshSettings::default(), false).await;
    let login = api.log_in().await;
    let raw = r#"{"nickName":"n"}"#;
    let signed = json!({"rawData": raw, "signature": signature(raw, &session_key())}).to_string();
    let refreshed = json_of(&api.refresh(text(&login, "refreshToken")).await);
    let post = api
        .check
        .call(
            request("POST", "/session")
                .with_bearer(text(&refreshed, "token"))
                .with_body(signed.clone()),
        )
        .await;
    assert_eq!(post.status, 200, "the login's key is still kept");

    // A refresh made after the login's session ended (the store is told the
    // time; nothing waits): that session has no session_key.
    let now = epoch_seconds() + 601;
    let presented = RefreshToken::parse(text(&refreshed, "refreshToken")).unwrap();
    let next = RefreshToken::generate().unwrap();
    let sid = SessionToken::generate().unwrap();
    let outcome = api
        .store
        .refresh(&RefreshWrite {
            presented: &presented.key(),
            family: &presented.family_hint().unwrap(),
            next: &next.key(),
            session_key: &sid.key(),
            now,
            session_expires_at: now + 600,
            refresh_expires_at: now + 1000,
            grace_seconds: 30,
            log: None,
        })
        .await
        .unwrap();
    let RefreshOutcome::Refreshed(session) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(session.session_key, None);
    let late = sid.expose();
    assert_eq!(api.session(late).await.status, 200);
    let post = api
        .check
        .call(
            request("POST", "/session")
                .with_bearer(late)
                .with_body(signed),
        )
        .await;
    assert_error(&post, 401, "session_key_expired");
    // The body is checked first.
    let bad = api
        .check
        .call(
            request("POST", "/session")
                .with_bearer(late)
                .with_body("{}"),
        )
        .await;
    assert_error(&bad, 400, "invalid_request");
}

#[tokio::test]
async fn jwt_mode_hands_out_jwts_every_route_checks_against_the_session() {
    let api = api(RefreshSettings::default(), true).await;
    let login = api.log_in().await;
    let token = text(&login, "token");
    assert_eq!(token.split('.').count(), 3);
    assert_eq!(api.session(token).await.status, 200);
    let refreshed = json_of(&api.refresh(text(&login, "refreshToken")).await);
    assert_eq!(text(&refreshed, "token").split('.').count(), 3);
    assert_eq!(api.session(text(&refreshed, "token")).await.status, 200);

    let jwks = api
        .check
        .call(request("GET", "/.well-known/jwks.json"))
        .await;
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));
    let keys = json_of(&jwks);
    assert_eq!(keys["keys"][0]["kid"], "k1");
    assert_eq!(keys["keys"][0]["alg"], "RS256");
    let config = json_of(
        &api.check
            .call(request("GET", "/.well-known/openid-configuration"))
            .await,
    );
    assert_eq!(config["issuer"], ISSUER);
    assert_eq!(
        config["jwks_uri"],
        format!("{ISSUER}/.well-known/jwks.json")
    );

    // Logout: the JWT still verifies, but its session is gone.
    let logout = api
        .check
        .call(request("DELETE", "/session").with_bearer(token))
        .await;
    assert_eq!(logout.status, 204);
    assert_error(&api.session(token).await, 401, "unauthorized");

    // A checker without ISSUER refuses every JWT and has no well-known routes.
    let plain = CheckSession::new(Arc::clone(&api.store));
    let again = api.log_in().await;
    assert_error(
        &plain
            .call(request("GET", "/session").with_bearer(text(&again, "token")))
            .await,
        401,
        "unauthorized",
    );
    assert_error(
        &plain.call(request("GET", "/.well-known/jwks.json")).await,
        404,
        "not_found",
    );
    assert_error(
        &plain
            .call(request("GET", "/.well-known/openid-configuration"))
            .await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn a_jwt_for_another_user_of_a_live_sid_is_refused() {
    // sub must be the session's userId: a key holder cannot borrow a session.
    let api = api(RefreshSettings::default(), true).await;
    let login = api.log_in().await;
    let token = text(&login, "token");
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let mut claims: crate::domain::jwt::Claims = serde_json::from_value(payload).unwrap();
    claims.sub = UserId::generate().unwrap().to_string();
    let signer = dev_key("other");
    let forged = crate::domain::jwt::sign(signer.current.as_ref().unwrap(), &claims).unwrap();
    assert_error(&api.session(&forged).await, 401, "unauthorized");
    // The same claims signed by the published key pass: the refusal above
    // is the signature's, and below the sub's.
    let borrowed = api
        .store
        .get(&SessionToken::parse(&claims.sid).unwrap().sid_key())
        .await
        .unwrap()
        .map(|mut s| {
            s.user_id = UserId::generate().unwrap();
            s
        })
        .unwrap();
    let genuine = api
        .login
        .jwt
        .as_ref()
        .unwrap()
        .token(
            &borrowed,
            &SessionToken::parse(&claims.sid).unwrap(),
            crate::domain::time::epoch_millis(),
        )
        .unwrap();
    assert_error(&api.session(&genuine).await, 401, "unauthorized");
}

/// A store whose refresh transactions commit (or not) and whose answers
/// are lost, as DynamoDB's can be: a transaction already sent is not
/// cancelled by giving up on it.
struct LostRefreshes {
    inner: MemorySessionStore,
    commits: bool,
}

impl SessionStore for LostRefreshes {
    async fn get(&self, key: &TokenKey) -> Result<Option<Session>, StoreError> {
        self.inner.get(key).await
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}

impl LoginStore for LostRefreshes {
    async fn login(&self, login: &LoginWrite<'_>) -> Result<LoginOutcome, StoreError> {
        self.inner.login(login).await
    }
}

impl RefreshStore for LostRefreshes {
    async fn logout(&self, key: &TokenKey, session: &Session) -> Result<(), StoreError> {
        self.inner.logout(key, session).await
    }

    async fn refresh(&self, refresh: &RefreshWrite<'_>) -> Result<RefreshOutcome, StoreError> {
        if self.commits {
            self.inner.refresh(refresh).await?;
        }
        std::future::pending().await
    }
}

published_keys_of_inner!(LostRefreshes);

async fn lost_refresh(commits: bool) -> (ApiResponse, tokio::time::Duration, Arc<LostRefreshes>) {
    let store = Arc::new(LostRefreshes {
        inner: MemorySessionStore::new(),
        commits,
    });
    let login = Login::new(
        Arc::clone(&store),
        InProcessWeChat::logging_in(wx_session(), vec![]),
        static_secret("s"),
        settings(),
    )
    .with_refresh(RefreshSettings::default());
    let logged_in = json_of(&post_login(&login, r#"{"code":"c1"}"#).await);
    let started = tokio::time::Instant::now();
    let response = login
        .call(
            request("POST", "/refresh")
                .with_body(json!({"refreshToken": text(&logged_in, "refreshToken")}).to_string()),
        )
        .await;
    (response, started.elapsed(), store)
}

/// The refresh committed but its answer was lost: one consistent read of the
/// new session finds it, and the client gets the new pair (a 503 would leave
/// it holding a spent token, taken for a thief's once the grace is over).
#[tokio::test(start_paused = true)]
async fn a_committed_refresh_whose_answer_was_lost_is_answered() {
    let (response, took, store) = lost_refresh(true).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(took, ANSWER_WITHIN - READ_BACK_BUDGET);
    let body = json_of(&response);
    let key = SessionToken::parse(text(&body, "token")).unwrap().key();
    let session = store.inner.get(&key).await.unwrap().expect("the session");
    assert_eq!(session.user_id.as_str(), text(&body, "userId"));
    // The new refresh token is the live one.
    let write = |presented: &str| {
        let token = RefreshToken::parse(presented).unwrap();
        (token.key(), token.family_hint().unwrap())
    };
    let (next, family) = write(text(&body, "refreshToken"));
    let outcome = store
        .inner
        .refresh(&RefreshWrite {
            presented: &next,
            family: &family,
            next: &RefreshToken::issue(&family).unwrap().key(),
            session_key: &SessionToken::generate().unwrap().key(),
            now: crate::domain::time::epoch_seconds(),
            session_expires_at: crate::domain::time::epoch_seconds() + 600,
            refresh_expires_at: crate::domain::time::epoch_seconds() + 600,
            grace_seconds: 30,
            log: None,
        })
        .await
        .unwrap();
    assert!(matches!(outcome, RefreshOutcome::Refreshed(_)));
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_did_not_commit_is_503_within_the_budget() {
    let (response, took, _) = lost_refresh(false).await;
    assert_error(&response, 503, "upstream_unavailable");
    assert!(took <= ANSWER_WITHIN);
}
