//! `GET /session` and `POST /session`: is this token live, and is this rawData
//! signed with its session_key? `DELETE /session`: log out.

use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use super::checks::{usable_session_key, verify_raw_data, verify_with_wechat};
use crate::domain::account::UserId;
use crate::domain::app::AppId;
use crate::domain::login_log::{DEFAULT_RETENTION_DAYS, LogEntry, LogEvent};
use crate::domain::redact::mask_openid;
use crate::domain::session::Session;
use crate::domain::time::epoch_millis;
use crate::domain::time::epoch_seconds;
use crate::domain::token::TokenKey;
use crate::domain::wechat::SessionKeyStatus;
use crate::edge::authenticate::{authenticate, require_mini_program};
use crate::edge::error::ApiError;
use crate::edge::request::{ApiRequest, ApiResponse};
use crate::edge::routes::{Handler, Route};
use crate::ports::accounts::AccountStore;
use crate::ports::errors::Upstream;
use crate::ports::keys::PublicKeyStore;
use crate::ports::login_log::LoginLog;
use crate::ports::sessions::RefreshStore;
use crate::ports::sessions::SessionStore;
use crate::runtime::deadline::Deadline;
use crate::services::access::TokenCheck;
use crate::wechat::server_api::{NoAccessToken, WeChatServerApi};

pub struct CheckSession<S, A = NoAccessToken> {
    pub(super) store: S,
    pub(super) wechat: A,
    log: LogSettings,
    pub(super) tokens: TokenCheck,
}

/// What the login log entries this function writes carry.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The default app, when the function lists apps.
    pub appid: Option<AppId>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    appid: Option<&'a AppId>,
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
            appid: session.appid.as_ref(),
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
pub trait CheckSessionStore:
    SessionStore + RefreshStore + AccountStore + LoginLog + PublicKeyStore
{
}
impl<T: SessionStore + RefreshStore + AccountStore + LoginLog + PublicKeyStore> CheckSessionStore
    for T
{
}

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
            self.log(&session, LogEvent::Logout, &request).await;
            return Ok(answer);
        }
        let verify = request.method == "GET" && verify_with_wechat(&request)?;
        if verify || request.method == "POST" {
            require_mini_program(&self.tokens, &session)?;
        }
        if verify {
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
        let Some(appid) = session.appid.as_ref().or(self.log.appid.as_ref()) else {
            warn!("?verify=wechat needs the session's app: set WECHAT_APPS");
            return Err(ApiError::Unavailable(Upstream::SecretStore));
        };
        let status = self
            .wechat
            .check_session_key(appid, &session.openid, session_key, deadline)
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
    /// An entry about `session`'s user, naming its app.
    pub(super) fn entry(
        &self,
        session: &Session,
        event: LogEvent,
        request: &ApiRequest,
    ) -> Option<LogEntry> {
        let outcome = "ok";
        let appid = session.appid.as_ref().or(self.log.appid.as_ref());
        match LogEntry::new(
            session.user_id.clone(),
            event,
            outcome,
            epoch_millis(),
            self.log.retention_days,
        ) {
            Ok(entry) => Some(
                entry
                    .with_appid(appid.map(AppId::as_str))
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
    pub(super) async fn log(&self, session: &Session, event: LogEvent, request: &ApiRequest) {
        let Some(entry) = self.entry(session, event, request) else {
            return;
        };
        match request.deadline.run(self.store.append(&entry)).await {
            Some(Ok(())) => {}
            Some(Err(err)) => warn!(error = %err, "login log entry not written"),
            None => warn!("login log entry ran out of time"),
        }
    }
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
            Route::Me => super::me::me(&request),
            Route::Jwks => super::well_known::jwks(&self.store, &self.tokens).await,
            Route::OpenIdConfiguration => super::well_known::openid_configuration(&self.tokens),
            Route::Account => self.account(request).await,
            _ => self.check(request).await,
        };
        answer.unwrap_or_else(ApiResponse::from)
    }
}
