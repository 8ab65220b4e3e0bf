//! `POST /login`: code → WeChat `jscode2session` → a session of our own.
//! (`POST /refresh` is served by the same function: `refresh.rs`.)

use serde::Serialize;
use tracing::{info, warn};

use crate::domain::account::UserId;
use crate::domain::jwt::Signer;
use crate::domain::login_log::device_fields;
use crate::domain::redact::mask_openid;
use crate::domain::refresh::RefreshSettings;
use crate::domain::session::Session;
use crate::domain::time::epoch_millis;
use crate::domain::token::SessionToken;
use crate::edge::body::{JsonBody, code_field, invalid};
use crate::edge::error::ApiError;
use crate::edge::request::{ApiRequest, ApiResponse};
use crate::edge::routes::{Handler, Route};
use crate::ports::errors::{Access, Upstream};
use crate::ports::keys::{PublicKeyStore, SigningKeyError, SigningKeySource};
use crate::ports::secrets::SecretSource;
use crate::ports::sessions::{LoginStore, RefreshStore};
use crate::ports::wechat::WeChatApi;
use crate::runtime::deadline::Deadline;
use crate::runtime::metrics::{self, Metric};
use crate::services::issuer::JwtIssuer;
use crate::services::login::{
    LoginSettingsRef, Prepared, READ_BACK_BUDGET, SESSION_WRITE_BUDGET, Stored, TokenSource,
    code_to_session, store_login,
};
use crate::wechat::RetryPolicy;

#[derive(Debug, Clone)]
pub struct LoginSettings {
    pub appid: String,
    pub session_ttl_seconds: i64,
    pub retry: RetryPolicy,
    /// How long login log entries are kept (`LOGIN_LOG_RETENTION_DAYS`).
    pub log_retention_days: i64,
}

/// What the login function's routes need of the store.
pub trait LoginFunctionStore: LoginStore + RefreshStore + PublicKeyStore {}
impl<T: LoginStore + RefreshStore + PublicKeyStore> LoginFunctionStore for T {}

pub struct Login<S, W, K, J = Signer> {
    pub(super) store: S,
    pub(super) wechat: W,
    pub(super) secrets: K,
    settings: LoginSettings,
    pub(super) tokens: TokenSource,
    single_session: bool,
    pub(super) refresh: RefreshSettings,
    /// JWT mode (`SIGNING_KEY_SECRET_ID`): the token handed out is a JWT.
    pub(super) jwt: Option<JwtIssuer<J>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LoginBody<'a> {
    pub(super) token: &'a str,
    pub(super) expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) refresh_expires_in: Option<i64>,
    pub(super) user_id: &'a UserId,
    pub(super) new_user: bool,
    pub(super) openid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) unionid: Option<&'a str>,
}

impl<S: LoginFunctionStore, W: WeChatApi, K: SecretSource> Login<S, W, K> {
    pub fn new(store: S, wechat: W, secrets: K, settings: LoginSettings) -> Self {
        Self {
            store,
            wechat,
            secrets,
            settings,
            tokens: Box::new(SessionToken::generate),
            single_session: true,
            refresh: RefreshSettings::OFF,
            jwt: None,
        }
    }
}

impl<S: LoginFunctionStore, W: WeChatApi, K: SecretSource, J: SigningKeySource> Login<S, W, K, J> {
    /// Refresh tokens (`REFRESH_TTL_SECONDS`, `REFRESH_REUSE_GRACE_SECONDS`).
    pub fn with_refresh(mut self, refresh: RefreshSettings) -> Self {
        self.refresh = refresh;
        self
    }

    /// JWT mode: tokens are signed by `issuer`'s keys. Load them first
    /// (`load_signing_keys`): a malformed key is a start-up error.
    pub fn with_jwt<J2: SigningKeySource>(self, issuer: JwtIssuer<J2>) -> Login<S, W, K, J2> {
        Login {
            store: self.store,
            wechat: self.wechat,
            secrets: self.secrets,
            settings: self.settings,
            tokens: self.tokens,
            single_session: self.single_session,
            refresh: self.refresh,
            jwt: Some(issuer),
        }
    }

    /// One active session per openid (the default): a new login revokes the
    /// user's previous session. `SINGLE_SESSION=false` turns it off.
    pub fn with_single_session(mut self, single_session: bool) -> Self {
        self.single_session = single_session;
        self
    }

    /// Replaces the token source: the seam that lets a test force a collision
    /// and watch the conditional put refuse it.
    pub fn with_token_source(mut self, tokens: TokenSource) -> Self {
        self.tokens = tokens;
        self
    }

    /// Reads the signing key and publishes its public half (JWT mode).
    pub async fn load_signing_keys(&self) -> Result<(), SigningKeyError> {
        match &self.jwt {
            Some(issuer) => issuer.load(&self.store, epoch_millis()).await,
            None => Ok(()),
        }
    }

    /// JWT mode: the 5-minute re-read of the signing key, run beside a
    /// request's own I/O and within `deadline` (see `JwtIssuer::reload_if_due`).
    pub(super) async fn reload_signing_keys_if_due(&self, deadline: Deadline) {
        if let Some(issuer) = &self.jwt {
            issuer
                .reload_if_due(&self.store, epoch_millis(), deadline)
                .await;
        }
    }

    pub(super) fn settings(&self) -> &LoginSettings {
        &self.settings
    }

    /// What the client gets for `session` made under `token`: the opaque
    /// token, or its JWT, signed with the keys already loaded (no I/O between
    /// the committed session and its answer).
    pub(super) fn hand_out(
        &self,
        token: &SessionToken,
        session: &Session,
    ) -> Result<String, ApiError> {
        match &self.jwt {
            None => Ok(token.expose().to_owned()),
            Some(issuer) => issuer.token(session, token, epoch_millis()).map_err(|err| {
                tracing::error!(error = %err, "signing the JWT failed");
                ApiError::Unavailable(Upstream::SecretStore)
            }),
        }
    }

    /// Done during init, concurrently: fetch the appsecret and open the
    /// connections to the table and to WeChat, so the first login pays for none
    /// of it (Lambda runs init with more CPU than a 128 MB invocation gets). A
    /// failure here is not fatal: the first login tries again.
    pub async fn warm_up(&self) {
        let prefetch = async {
            if let Err(err) = self.secrets.appsecret().await {
                warn!(error = %err, "appsecret prefetch failed; the first login will retry");
            }
        };
        tokio::join!(
            prefetch,
            self.store.warm_up(Access::Write),
            self.wechat.warm_up()
        );
    }

    async fn login(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        let body = JsonBody::from_request(&request)?;
        let code = code_field(&body)?;
        let device = match body.get("device") {
            Some(device) => Some(device_fields(device).map_err(invalid)?),
            None => None,
        };
        let wechat_deadline = request
            .deadline
            .before(SESSION_WRITE_BUDGET + READ_BACK_BUDGET);
        let settings = &self.settings;
        let (wx, ()) = tokio::join!(
            code_to_session(
                &self.wechat,
                &self.secrets,
                &settings.appid,
                code,
                settings.retry,
                wechat_deadline
            ),
            self.reload_signing_keys_if_due(wechat_deadline)
        );
        let wx = wx?;
        let prepared = Prepared::new(
            &wx,
            &LoginSettingsRef {
                appid: &settings.appid,
                session_ttl_seconds: settings.session_ttl_seconds,
                log_retention_days: settings.log_retention_days,
                refresh_ttl_seconds: self.refresh.ttl_seconds,
            },
            &request.origin,
            device,
        )?;
        let plan = prepared.plan(self.single_session, self.jwt.is_some());
        let logged_in = match store_login(&self.store, &self.tokens, plan, request.deadline).await?
        {
            Stored::LoggedIn(logged_in) => logged_in,
            Stored::Disabled => {
                info!(openid = %mask_openid(&wx.openid), "login refused: the account is disabled");
                return Err(ApiError::AccountDisabled);
            }
        };
        if logged_in.new_user {
            metrics::count(Metric::AccountsCreated, &[]);
        }
        let unionid = wx.unionid.clone().or(logged_in.unionid.clone());
        let session = Session {
            unionid: unionid.clone(),
            ..logged_in.session
        };
        let token = self.hand_out(&logged_in.token, &session)?;
        info!(openid = %mask_openid(&wx.openid), new_user = logged_in.new_user, "login succeeded");
        Ok(ApiResponse::json(
            200,
            &LoginBody {
                token: &token,
                expires_in: settings.session_ttl_seconds,
                refresh_token: prepared.refresh.as_ref().map(|(token, ..)| token.expose()),
                refresh_expires_in: prepared.refresh.as_ref().map(|_| self.refresh.ttl_seconds),
                user_id: &logged_in.user_id,
                new_user: logged_in.new_user,
                openid: &wx.openid,
                unionid: unionid.as_deref(),
            },
        ))
    }
}

impl<S: LoginFunctionStore, W: WeChatApi, K: SecretSource, J: SigningKeySource> Handler
    for Login<S, W, K, J>
{
    fn serves(&self, route: Route) -> bool {
        matches!(route, Route::Login | Route::Refresh)
    }

    async fn handle(&self, route: Route, request: ApiRequest) -> ApiResponse {
        let answer = match route {
            Route::Refresh => self.refresh(request).await,
            _ => self.login(request).await,
        };
        answer.unwrap_or_else(ApiResponse::from)
    }
}
