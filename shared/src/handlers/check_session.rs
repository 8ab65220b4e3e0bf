//! `GET /session` and `POST /session`: is this token live, and is this rawData
//! signed with its session_key? `DELETE /session`: log out.

use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::access::TokenCheck;
use crate::access_token::{NoAccessToken, WeChatServerApi};
use crate::account::{AccountStore, UserId};
use crate::api::{ApiRequest, ApiResponse, Handler, JsonBody, Route, authenticate, invalid};
use crate::crypto::{SIGNATURE_HEX_CHARS, signature_matches};
use crate::deadline::Deadline;
use crate::error::{ApiError, Upstream};
use crate::jwt::PublicKeyStore;
use crate::login_log::{DEFAULT_RETENTION_DAYS, LogEntry, LogEvent, LoginLog, epoch_millis};
use crate::metrics::{self, Metric};
use crate::redact::SessionKey;
use crate::redact::mask_openid;
use crate::session::{Session, SessionStore, epoch_seconds};
use crate::token::TokenKey;
use crate::wechat::SessionKeyStatus;

pub const MAX_RAW_DATA_CHARS: usize = 8192;

pub struct CheckSession<S, A = NoAccessToken> {
    pub(super) store: S,
    pub(super) wechat: A,
    log: LogSettings,
    tokens: TokenCheck,
}

/// What the login log entries this function writes carry.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `WECHAT_APPID`, when the function has it.
    pub appid: Option<String>,
    pub retention_days: i64,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            appid: None,
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionBody<'a> {
    valid: bool,
    user_id: &'a UserId,
    openid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unionid: Option<&'a str>,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_info: Option<Value>,
}

impl<'a> SessionBody<'a> {
    fn new(session: &'a Session) -> Self {
        Self {
            valid: true,
            user_id: &session.user_id,
            openid: &session.openid,
            unionid: session.unionid.as_deref(),
            expires_in: session.seconds_left(epoch_seconds()),
            user_info: None,
        }
    }
}

impl<S: SessionStore> CheckSession<S> {
    /// `?verify=wechat` needs `with_wechat`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            wechat: None,
            log: LogSettings::default(),
            tokens: TokenCheck::default(),
        }
    }
}

/// What the session routes need of the store.
pub trait CheckSessionStore: SessionStore + AccountStore + LoginLog + PublicKeyStore {}
impl<T: SessionStore + AccountStore + LoginLog + PublicKeyStore> CheckSessionStore for T {}

impl<S: CheckSessionStore, A: WeChatServerApi> CheckSession<S, A> {
    /// Enables `GET /session?verify=wechat`: WeChat's checksession.
    pub fn with_wechat<B: WeChatServerApi>(self, wechat: B) -> CheckSession<S, B> {
        CheckSession {
            store: self.store,
            wechat,
            log: self.log,
            tokens: self.tokens,
        }
    }

    /// How JWTs are checked (`ISSUER`, `AUDIENCE`), and the well-known routes.
    pub fn with_token_check(mut self, tokens: TokenCheck) -> Self {
        self.tokens = tokens;
        self
    }

    /// What this function's login log entries carry.
    pub fn with_log_settings(mut self, log: LogSettings) -> Self {
        self.log = log;
        self
    }

    async fn check(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        let (key, session) = authenticate(&self.store, &self.tokens, &request).await?;
        if request.method == "DELETE" {
            let answer = self.logout(&key, &session, request.deadline).await?;
            self.log(&session.user_id, LogEvent::Logout, &request).await;
            return Ok(answer);
        }
        if request.method == "GET" && verify_with_wechat(&request)? {
            self.verify_session_key(&key, &session, request.deadline)
                .await?;
        }
        let mut body = SessionBody::new(&session);
        if request.method == "POST" {
            body.user_info = Some(verify_raw_data(&request, &session)?);
        }
        Ok(ApiResponse::json(200, &body))
    }

    /// Asks WeChat whether it still holds the session_key. A later wx.login (on
    /// this or another backend) replaces it; the session is then useless for
    /// decrypting and is deleted.
    async fn verify_session_key(
        &self,
        key: &TokenKey,
        session: &Session,
        deadline: Deadline,
    ) -> Result<(), ApiError> {
        let session_key = usable_session_key(session)?;
        let status = self
            .wechat
            .check_session_key(&session.openid, session_key, deadline)
            .await?;
        if status == SessionKeyStatus::Valid {
            return Ok(());
        }
        info!(openid = %mask_openid(&session.openid), "WeChat no longer holds the session_key; session deleted");
        match deadline.run(self.store.delete(key)).await {
            Some(Ok(())) => {}
            Some(Err(err)) => warn!(error = %err, "deleting the stale session failed"),
            None => warn!("deleting the stale session ran out of time"),
        }
        Err(ApiError::SessionKeyInvalid)
    }

    /// `DELETE /session`: the session is deleted and its token refused from
    /// now on, with its refresh family (every token and session descended
    /// from the same login).
    async fn logout(
        &self,
        key: &TokenKey,
        session: &Session,
        deadline: Deadline,
    ) -> Result<ApiResponse, ApiError> {
        match deadline.run(self.store.logout(key, session)).await {
            Some(Ok(())) => Ok(ApiResponse::no_content()),
            Some(Err(err)) => {
                warn!(error = %err, "session delete failed");
                Err(ApiError::Unavailable(Upstream::SessionTable))
            }
            None => Err(ApiError::Unavailable(Upstream::SessionTable)),
        }
    }
}

impl<S: CheckSessionStore, A: WeChatServerApi> CheckSession<S, A> {
    /// `GET /account` and `DELETE /account`, for the session's own account.
    async fn account(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        let (_, session) = authenticate(&self.store, &self.tokens, &request).await?;
        if request.method == "DELETE" {
            return self.delete_account(&session, &request).await;
        }
        let account = match request
            .deadline
            .run(self.store.account(&session.openid))
            .await
        {
            Some(Ok(account)) => account.filter(|account| account.user_id == session.user_id),
            Some(Err(err)) => {
                warn!(error = %err, "account read failed");
                return Err(ApiError::Unavailable(Upstream::SessionTable));
            }
            None => return Err(ApiError::Unavailable(Upstream::SessionTable)),
        };
        // A session outliving its account is revoked with it; a race with a
        // deletion is the only way here.
        let account = account.ok_or(ApiError::Unauthorized(UNKNOWN_ACCOUNT))?;
        Ok(ApiResponse::json(200, &account.view()))
    }

    /// `DELETE /account`: the account and everything kept for it, at once.
    async fn delete_account(
        &self,
        session: &Session,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let entry = self.entry(&session.user_id, LogEvent::AccountDeleted, request);
        let deletion = self
            .store
            .delete_account(&session.user_id, &session.openid, entry.as_ref());
        match request.deadline.run(deletion).await {
            Some(Ok(true)) => {
                info!(openid = %mask_openid(&session.openid), "account deleted");
                metrics::count(Metric::AccountsDeleted, &[]);
                Ok(ApiResponse::no_content())
            }
            Some(Ok(false)) => Err(ApiError::Unauthorized(UNKNOWN_ACCOUNT)),
            Some(Err(err)) => {
                warn!(error = %err, "account deletion failed");
                Err(ApiError::Unavailable(Upstream::SessionTable))
            }
            None => {
                warn!("account deletion ran out of time");
                Err(ApiError::Unavailable(Upstream::SessionTable))
            }
        }
    }

    fn entry(&self, user_id: &UserId, event: LogEvent, request: &ApiRequest) -> Option<LogEntry> {
        let outcome = "ok";
        match LogEntry::new(
            user_id.clone(),
            event,
            outcome,
            epoch_millis(),
            self.log.retention_days,
        ) {
            Ok(entry) => Some(
                entry
                    .with_appid(self.log.appid.as_deref())
                    .with_origin(&request.origin),
            ),
            Err(err) => {
                warn!(error = %err, "the OS random source failed; no log entry");
                None
            }
        }
    }

    /// Appends a log entry; a failure is logged, the answer stands (the
    /// session is already gone).
    async fn log(&self, user_id: &UserId, event: LogEvent, request: &ApiRequest) {
        let Some(entry) = self.entry(user_id, event, request) else {
            return;
        };
        match request.deadline.run(self.store.append(&entry)).await {
            Some(Ok(())) => {}
            Some(Err(err)) => warn!(error = %err, "login log entry not written"),
            None => warn!("login log entry ran out of time"),
        }
    }
}

const UNKNOWN_ACCOUNT: &str =
    "The account behind this session no longer exists: call wx.login and POST /login again.";

const NO_AUTHORIZER: &str = "GET /me is served only behind the wxauth authorizer, which identifies the caller from its Bearer token: log in with POST /login and send the token.";

const CONTEXT_EXPIRED: &str = "The session behind this request has expired (API Gateway answered from its authorizer cache): log in again with POST /login.";

/// `GET /me`: the caller the authorizer identified (openid, unionid), from the
/// event's authorizer context; the route has no other way to know who calls.
/// API Gateway may answer from a cached Allow after the session ended, so the
/// context's `expiresAt` is checked here too.
fn me(request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let caller = request
        .caller
        .as_ref()
        .ok_or(ApiError::Unauthorized(NO_AUTHORIZER))?;
    if caller.expires_at <= epoch_seconds() {
        return Err(ApiError::Unauthorized(CONTEXT_EXPIRED));
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct MeBody<'a> {
        user_id: &'a UserId,
        openid: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        unionid: Option<&'a str>,
    }
    Ok(ApiResponse::json(
        200,
        &MeBody {
            user_id: &caller.user_id,
            openid: &caller.openid,
            unionid: caller.unionid.as_deref(),
        },
    ))
}

/// The session's session_key, or `session_key_expired` for a refreshed
/// session whose login's key is no longer kept.
pub(crate) fn usable_session_key(session: &Session) -> Result<&SessionKey, ApiError> {
    session
        .usable_session_key(epoch_seconds())
        .ok_or(ApiError::SessionKeyExpired)
}

/// `?verify=wechat` asks for the server-side check; no `verify` is the plain
/// check; any other value is the client's mistake.
fn verify_with_wechat(request: &ApiRequest) -> Result<bool, ApiError> {
    match request.query_param("verify").as_deref() {
        None => Ok(false),
        Some("wechat") => Ok(true),
        Some(_) => Err(invalid(
            "verify accepts only the value wechat (GET /session?verify=wechat).".into(),
        )),
    }
}

/// Checks `signature == sha1(rawData + session_key)` and returns rawData parsed.
fn verify_raw_data(request: &ApiRequest, session: &Session) -> Result<Value, ApiError> {
    let body = JsonBody::from_request(request)?;
    let raw_data = body.required_str("rawData")?;
    let signature_hex = body.required_str("signature")?;
    if raw_data.chars().count() > MAX_RAW_DATA_CHARS {
        return Err(invalid(format!(
            "rawData is longer than {MAX_RAW_DATA_CHARS} characters."
        )));
    }
    let signature: [u8; 20] = (signature_hex.len() == SIGNATURE_HEX_CHARS)
        .then(|| hex::decode(signature_hex).ok()?.try_into().ok())
        .flatten()
        .ok_or_else(|| invalid("signature must be exactly 40 hex characters.".into()))?;
    let user_info: Value = serde_json::from_str(raw_data).map_err(|_| {
        invalid("rawData is not JSON: send it exactly as wx.getUserInfo returned it.".into())
    })?;
    if !signature_matches(raw_data, usable_session_key(session)?, &signature) {
        return Err(ApiError::SignatureMismatch);
    }
    Ok(user_info)
}

impl<S: CheckSessionStore, A: WeChatServerApi> Handler for CheckSession<S, A> {
    fn serves(&self, route: Route) -> bool {
        matches!(
            route,
            Route::Session | Route::Account | Route::Me | Route::Jwks | Route::OpenIdConfiguration
        )
    }

    async fn handle(&self, route: Route, request: ApiRequest) -> ApiResponse {
        let answer = match route {
            Route::Me => me(&request),
            Route::Jwks => super::well_known::jwks(&self.store, &self.tokens).await,
            Route::OpenIdConfiguration => super::well_known::openid_configuration(&self.tokens),
            Route::Account => self.account(request).await,
            _ => self.check(request).await,
        };
        answer.unwrap_or_else(ApiResponse::from)
    }
}
