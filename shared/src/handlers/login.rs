//! `POST /login`: an app's code → WeChat (`jscode2session` for a
//! mini-program, `sns/oauth2/access_token` for an `oauth` app) → the
//! person's account and a session of our own. (`POST /refresh` is served by
//! the same function: `refresh.rs`.)

use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::domain::account::UserId;
use crate::domain::app::{App, AppId, Apps};
use crate::domain::jwt::Signer;
use crate::domain::login_log::device_fields;
use crate::domain::redact::mask_openid;
use crate::domain::refresh::RefreshSettings;
use crate::domain::risk::RiskPolicy;
use crate::domain::session::Session;
use crate::domain::time::epoch_millis;
use crate::domain::token::SessionToken;
use crate::edge::body::{JsonBody, code_field, invalid};
use crate::edge::error::ApiError;
use crate::edge::request::{ApiRequest, ApiResponse};
use crate::edge::routes::{Handler, Route};
use crate::ports::errors::{Access, Upstream};
use crate::ports::keys::{PublicKeyStore, SigningKeyError, SigningKeySource};
use crate::ports::secrets::{SecretError, SecretSource};
use crate::ports::sessions::{LoginStore, NewAccount, RefreshStore};
use crate::ports::wechat::WeChatApi;
use crate::runtime::deadline::Deadline;
use crate::runtime::metrics::{self, Metric};
use crate::services::issuer::JwtIssuer;
use crate::services::login::{
    LoggedIn, LoginSettingsRef, Prepared, READ_BACK_BUDGET, SESSION_WRITE_BUDGET, Stored,
    TokenSource, store_login,
};
use crate::services::risk::{RISK_CHECK_BUDGET, sign_up_rank};
use crate::services::sign_in::sign_in;
use crate::wechat::RetryPolicy;
use crate::wechat::server_api::{NoAccessToken, WeChatServerApi};

#[derive(Debug, Clone)]
pub struct LoginSettings {
    /// `WECHAT_APPS`: the first is the default.
    pub apps: Apps,
    pub session_ttl_seconds: i64,
    pub retry: RetryPolicy,
    /// How long login log entries are kept (`LOGIN_LOG_RETENTION_DAYS`).
    pub log_retention_days: i64,
    /// `RISK_CONTROL` and `RISK_REJECT_RANK`.
    pub risk: RiskPolicy,
}

/// What the login function's routes need of the store.
pub trait LoginFunctionStore: LoginStore + RefreshStore + PublicKeyStore {}
impl<T: LoginStore + RefreshStore + PublicKeyStore> LoginFunctionStore for T {}

pub struct Login<S, W, K, J = Signer, A = NoAccessToken> {
    pub(super) store: S,
    pub(super) wechat: W,
    pub(super) secrets: K,
    settings: LoginSettings,
    pub(super) tokens: TokenSource,
    single_session: bool,
    pub(super) refresh: RefreshSettings,
    /// JWT mode (`SIGNING_KEY_SECRET_ID`): the token handed out is a JWT.
    pub(super) jwt: Option<JwtIssuer<J>>,
    /// The apps' access tokens, for the sign-up's risk rank.
    access: A,
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
    pub(super) appid: &'a AppId,
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
            access: None,
        }
    }
}

impl<S: LoginFunctionStore, W: WeChatApi, K: SecretSource, J: SigningKeySource, A: WeChatServerApi>
    Login<S, W, K, J, A>
{
    /// Refresh tokens (`REFRESH_TTL_SECONDS`, `REFRESH_REUSE_GRACE_SECONDS`).
    pub fn with_refresh(mut self, refresh: RefreshSettings) -> Self {
        self.refresh = refresh;
        self
    }

    /// JWT mode: tokens are signed by `issuer`'s keys. Load them first
    /// (`load_signing_keys`): a malformed key is a start-up error.
    pub fn with_jwt<J2: SigningKeySource>(self, issuer: JwtIssuer<J2>) -> Login<S, W, K, J2, A> {
        Login {
            store: self.store,
            wechat: self.wechat,
            secrets: self.secrets,
            settings: self.settings,
            tokens: self.tokens,
            single_session: self.single_session,
            refresh: self.refresh,
            jwt: Some(issuer),
            access: self.access,
        }
    }

    /// The apps' access tokens: what `RISK_CONTROL` asks WeChat with.
    pub fn with_access_tokens<A2: WeChatServerApi>(self, access: A2) -> Login<S, W, K, J, A2> {
        Login {
            store: self.store,
            wechat: self.wechat,
            secrets: self.secrets,
            settings: self.settings,
            tokens: self.tokens,
            single_session: self.single_session,
            refresh: self.refresh,
            jwt: self.jwt,
            access,
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

    /// Start-up's check of the secret: it must hold an appsecret for every
    /// listed app (`Err` names the first that has none). A secret that cannot
    /// be read now is not fatal: the first login tries again.
    pub async fn check_appsecrets(&self) -> Result<(), String> {
        for app in self.settings.apps.iter() {
            match self.secrets.appsecret(&app.id).await {
                Ok(_) => {}
                Err(missing @ SecretError::Missing(_)) => {
                    return Err(format!("WECHAT_SECRET_ID: {missing}"));
                }
                Err(err) => {
                    warn!(error = %err, "appsecret prefetch failed; the first login will retry");
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Done during init, concurrently: fetch the appsecret and open the
    /// connections to the table and to WeChat, so the first login pays for none
    /// of it (Lambda runs init with more CPU than a 128 MB invocation gets). A
    /// failure here is not fatal: the first login tries again.
    pub async fn warm_up(&self) {
        let prefetch = async {
            let default = &self.settings.apps.default_app().id;
            if let Err(err) = self.secrets.appsecret(default).await {
                warn!(error = %err, "appsecret prefetch failed; the first login will retry");
            }
        };
        tokio::join!(
            prefetch,
            self.store.warm_up(Access::Write),
            self.wechat.warm_up()
        );
    }

    /// The app a login names (`appid`), or the default one.
    fn app_of(&self, body: &JsonBody) -> Result<&App, ApiError> {
        match body.get("appid") {
            None | Some(Value::Null) => Ok(self.settings.apps.default_app()),
            Some(Value::String(appid)) => self.settings.apps.get(appid).ok_or(ApiError::UnknownApp),
            Some(_) => Err(invalid(
                "appid must be a string: one of the server's apps, or absent for the default one."
                    .into(),
            )),
        }
    }

    async fn login(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        let body = JsonBody::from_request(&request)?;
        let code = code_field(&body)?;
        let device = match body.get("device") {
            Some(device) => Some(device_fields(device).map_err(invalid)?),
            None => None,
        };
        let app = match self.app_of(&body) {
            Ok(app) => app,
            Err(err) => {
                metrics::count(
                    Metric::Logins,
                    &[("App", "unknown"), ("Outcome", err.code())],
                );
                return Err(err);
            }
        };
        let answer = self.log_in(app, code, device, &request).await;
        let outcome = answer.as_ref().map_or_else(ApiError::code, |_| "ok");
        metrics::count(
            Metric::Logins,
            &[("App", app.id.as_str()), ("Outcome", outcome)],
        );
        answer
    }

    async fn log_in(
        &self,
        app: &App,
        code: &str,
        device: Option<serde_json::Map<String, Value>>,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let settings = &self.settings;
        // A sign-up's risk rank comes after WeChat's answer and before the
        // write: its second is taken from WeChat's share of the budget.
        let checks_risk = settings.risk.checks() && app.is_mini_program();
        let mut reserved = SESSION_WRITE_BUDGET + READ_BACK_BUDGET;
        if checks_risk {
            reserved += RISK_CHECK_BUDGET;
        }
        let wechat_deadline = request.deadline.before(reserved);
        let (signed_in, ()) = tokio::join!(
            sign_in(
                &self.wechat,
                &self.secrets,
                app,
                code,
                settings.retry,
                wechat_deadline
            ),
            self.reload_signing_keys_if_due(wechat_deadline)
        );
        let signed_in = signed_in?;
        let mut prepared = Prepared::new(
            &signed_in,
            &LoginSettingsRef {
                app,
                session_ttl_seconds: settings.session_ttl_seconds,
                log_retention_days: settings.log_retention_days,
                refresh_ttl_seconds: self.refresh.ttl_seconds,
            },
            &request.origin,
            device,
        )?;
        let default_app = app.id == settings.apps.default_app().id;
        let jwt_mode = self.jwt.is_some();
        let first = match checks_risk {
            true => NewAccount::AskFirst,
            false => NewAccount::Create { risk_rank: None },
        };
        let plan = prepared.plan(self.single_session, jwt_mode, default_app, first);
        let mut stored = store_login(&self.store, &self.tokens, plan, request.deadline).await?;
        if let Stored::WouldCreate = stored {
            let rank = sign_up_rank(
                &self.access,
                &app.id,
                &signed_in.openid,
                request.origin.source_ip.as_deref(),
                request
                    .deadline
                    .before(SESSION_WRITE_BUDGET + READ_BACK_BUDGET),
            )
            .await;
            if settings.risk.refuses(rank) {
                metrics::count(Metric::RiskRejected, &[]);
                info!(openid = %mask_openid(&signed_in.openid), "sign-up refused: WeChat's risk rank is at or above RISK_REJECT_RANK");
                return Err(ApiError::RiskRejected);
            }
            prepared.log.risk_rank = rank.map(|rank| rank.get());
            let create = NewAccount::Create { risk_rank: rank };
            let plan = prepared.plan(self.single_session, jwt_mode, default_app, create);
            stored = store_login(&self.store, &self.tokens, plan, request.deadline).await?;
        }
        let logged_in = match stored {
            Stored::LoggedIn(logged_in) => logged_in,
            Stored::Disabled => {
                info!(openid = %mask_openid(&signed_in.openid), "login refused: the account is disabled");
                return Err(ApiError::AccountDisabled);
            }
            Stored::WouldCreate => return Err(ApiError::Unavailable(Upstream::SessionTable)),
        };
        count_account_changes(&logged_in);
        let token = self.hand_out(&logged_in.token, &logged_in.session)?;
        info!(openid = %mask_openid(&signed_in.openid), new_user = logged_in.new_user, linked = logged_in.linked, "login succeeded");
        Ok(ApiResponse::json(
            200,
            &LoginBody {
                token: &token,
                expires_in: settings.session_ttl_seconds,
                refresh_token: prepared.refresh.as_ref().map(|(token, ..)| token.expose()),
                refresh_expires_in: prepared.refresh.as_ref().map(|_| self.refresh.ttl_seconds),
                user_id: &logged_in.user_id,
                new_user: logged_in.new_user,
                appid: &app.id,
                openid: &signed_in.openid,
                unionid: logged_in.unionid.as_deref(),
            },
        ))
    }
}

/// What a login did to accounts, as metrics.
fn count_account_changes(logged_in: &LoggedIn) {
    if logged_in.new_user {
        metrics::count(Metric::AccountsCreated, &[]);
    }
    if logged_in.linked {
        metrics::count(Metric::AppLinked, &[]);
    }
    if logged_in.conflict_with.is_some() {
        warn!(
            "a login brought a unionid another account holds: nothing was linked (wxauth-admin merge resolves it)"
        );
        metrics::count(Metric::AccountConflicts, &[]);
    }
}

impl<S: LoginFunctionStore, W: WeChatApi, K: SecretSource, J: SigningKeySource, A: WeChatServerApi>
    Handler for Login<S, W, K, J, A>
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
