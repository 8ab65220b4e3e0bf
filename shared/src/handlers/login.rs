//! `POST /login`: code → WeChat `jscode2session` → a session of our own.

use std::time::Duration;

use serde::Serialize;
use tracing::{info, warn};

use crate::account::UserId;
use crate::api::{ApiRequest, ApiResponse, Handler, JsonBody, Route, code_field, invalid};
use crate::deadline::Deadline;
use crate::error::{ApiError, Upstream};
use crate::jwt::{JwtIssuer, PublicKeyStore, Signer, SigningKeySource};
use crate::login_log::{LogEntry, LogEvent, device_fields, epoch_millis};
use crate::metrics::{self, Metric};
use crate::redact::{AppSecret, mask_openid};
use crate::refresh::{RefreshFamily, RefreshIssue, RefreshSettings, RefreshToken};
use crate::secret::{SecretSource, with_appsecret};
use crate::session::{
    Access, LoginOutcome, LoginWrite, Session, SessionStore, StoreError, epoch_seconds,
};
use crate::token::{SessionToken, TokenKey};
use crate::upstream::UpstreamError;
use crate::wechat::{OneTimeCode, RetryPolicy, WeChatApi, WeChatError, WxSession, with_retry};

/// A token collision is a 2^-128 event; a second one in a row means a broken RNG.
const TOKEN_ATTEMPTS: u32 = 3;
/// The end of the answer budget belongs to the session write, never to WeChat:
/// WeChat's retries may take everything before it, and a write that starts with
/// no time left times out after WeChat has spent the code. A single-session
/// login is a GetItem and a TransactWriteItems (a few ms each; contention rounds
/// and the SDK's retries of a throttled call take longer).
pub const SESSION_WRITE_BUDGET: Duration = Duration::from_millis(1500);
/// Kept after the write for one consistent read, when the write's answer did
/// not come in time: a transaction already sent is not cancelled by giving up
/// on it, and may have committed.
pub const READ_BACK_BUDGET: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct LoginSettings {
    pub appid: String,
    pub session_ttl_seconds: i64,
    pub retry: RetryPolicy,
    /// How long login log entries are kept (`LOGIN_LOG_RETENTION_DAYS`).
    pub log_retention_days: i64,
}

/// Where session tokens come from: the OS CSPRNG, unless a test forces a collision.
pub type TokenSource = Box<dyn Fn() -> Result<SessionToken, getrandom::Error> + Send + Sync>;

pub struct Login<S, W, K, J = Signer> {
    pub(super) store: S,
    pub(super) wechat: W,
    pub(super) secrets: K,
    settings: LoginSettings,
    tokens: TokenSource,
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

/// A login the store wrote.
struct LoggedIn {
    token: SessionToken,
    user_id: UserId,
    new_user: bool,
    unionid: Option<String>,
}

/// A fresh session's secret and its table key: the opaque token, or in JWT
/// mode the JWT's `sid`.
pub(super) fn session_key_of(token: &SessionToken, jwt_mode: bool) -> TokenKey {
    if jwt_mode {
        token.sid_key()
    } else {
        token.key()
    }
}

impl<S: SessionStore + PublicKeyStore, W: WeChatApi, K: SecretSource> Login<S, W, K> {
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

impl<S: SessionStore + PublicKeyStore, W: WeChatApi, K: SecretSource, J: SigningKeySource>
    Login<S, W, K, J>
{
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

    /// Reads the signing key and publishes its public half (JWT mode).
    pub async fn load_signing_keys(&self) -> Result<(), crate::jwt::SigningKeyError> {
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

    pub(super) fn draw_token(&self) -> Result<SessionToken, ApiError> {
        (self.tokens)().map_err(|err| {
            tracing::error!(error = %err, "the OS random source failed");
            ApiError::Unavailable(Upstream::SessionTable)
        })
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
        let (wx, ()) = tokio::join!(
            self.code_to_session(code, wechat_deadline),
            self.reload_signing_keys_if_due(wechat_deadline)
        );
        let wx = wx?;
        let random_failed = |err: getrandom::Error| {
            tracing::error!(error = %err, "the OS random source failed");
            ApiError::Unavailable(Upstream::SessionTable)
        };
        let candidate = UserId::generate().map_err(random_failed)?;
        let log = LogEntry::new(
            candidate.clone(),
            LogEvent::Login,
            "ok",
            epoch_millis(),
            self.settings.log_retention_days,
        )
        .map_err(random_failed)?
        .with_appid(Some(&self.settings.appid))
        .with_origin(&request.origin)
        .with_device(device);
        let refresh = match self.refresh.enabled() {
            true => {
                let family = RefreshFamily::generate().map_err(random_failed)?;
                let token = RefreshToken::issue(&family).map_err(random_failed)?;
                Some((token, family))
            }
            false => None,
        };
        let refresh_key = refresh.as_ref().map(|(token, _)| token.key());
        let issue = refresh
            .as_ref()
            .zip(refresh_key.as_ref())
            .map(|((_, family), key)| RefreshIssue {
                key,
                family,
                expires_at: epoch_seconds() + self.refresh.ttl_seconds,
            });
        let (logged_in, session) = match self
            .store_login(&wx, candidate, &log, issue, request.deadline)
            .await?
        {
            Ok(logged_in) => logged_in,
            Err(()) => {
                info!(openid = %mask_openid(&wx.openid), "login refused: the account is disabled");
                return Err(ApiError::AccountDisabled);
            }
        };
        if logged_in.new_user {
            metrics::count(Metric::AccountsCreated, &[]);
        }
        let unionid = wx.unionid.clone().or(logged_in.unionid.clone());
        let session = Session {
            user_id: logged_in.user_id.clone(),
            unionid: unionid.clone(),
            ..session
        };
        let token = self.hand_out(&logged_in.token, &session)?;
        info!(openid = %mask_openid(&wx.openid), new_user = logged_in.new_user, "login succeeded");
        Ok(ApiResponse::json(
            200,
            &LoginBody {
                token: &token,
                expires_in: self.settings.session_ttl_seconds,
                refresh_token: refresh.as_ref().map(|(token, _)| token.expose()),
                refresh_expires_in: refresh.as_ref().map(|_| self.refresh.ttl_seconds),
                user_id: &logged_in.user_id,
                new_user: logged_in.new_user,
                openid: &wx.openid,
                unionid: unionid.as_deref(),
            },
        ))
    }

    async fn code_to_session(
        &self,
        code: &str,
        deadline: Deadline,
    ) -> Result<WxSession, UpstreamError> {
        with_appsecret(&self.secrets, deadline, |secret| async move {
            self.jscode2session(&secret, code, deadline).await
        })
        .await
    }

    /// One code, tried as the retry policy allows (see `OneTimeCode`).
    async fn jscode2session(
        &self,
        secret: &AppSecret,
        code: &str,
        deadline: Deadline,
    ) -> Result<WxSession, WeChatError> {
        let watch = OneTimeCode::default();
        let result = with_retry(self.settings.retry, deadline, |timeout| {
            let watch = &watch;
            async move {
                let answer = self
                    .wechat
                    .jscode2session(&self.settings.appid, secret, code, timeout)
                    .await;
                watch.saw(&answer);
                answer
            }
        })
        .await;
        watch.spent_by_our_retry(result.as_ref().err(), "jscode2session");
        result
    }

    /// Stores the session under a fresh token, with the account and the log
    /// entry. A 200 is only ever sent once the login is known to be stored, so
    /// every token handed out works: when the write's answer does not come (in
    /// time, or at all), one consistent read of the new key tells whether it
    /// committed; the key comes from a fresh 256-bit token, so an item there is
    /// this write's. `Ok(Err(()))`: the account is disabled (the store logged
    /// the refusal).
    async fn store_login(
        &self,
        wx: &WxSession,
        candidate: UserId,
        log: &LogEntry,
        refresh: Option<RefreshIssue<'_>>,
        deadline: Deadline,
    ) -> Result<Result<(LoggedIn, Session), ()>, ApiError> {
        let now = epoch_seconds();
        let session = Session {
            user_id: candidate,
            openid: wx.openid.clone(),
            unionid: wx.unionid.clone(),
            session_key: Some(wx.session_key.clone()),
            session_key_expires_at: None,
            family: refresh.map(|issue| issue.family.clone()),
            created_at: now,
            expires_at: now + self.settings.session_ttl_seconds,
        };
        for _ in 0..TOKEN_ATTEMPTS {
            let token = self.draw_token()?;
            let key = session_key_of(&token, self.jwt.is_some());
            let write = LoginWrite {
                key: &key,
                session: &session,
                single_session: self.single_session,
                log: Some(log),
                refresh,
            };
            match deadline
                .before(READ_BACK_BUDGET)
                .run(self.store.login(&write))
                .await
            {
                Some(Ok(LoginOutcome::LoggedIn {
                    user_id,
                    new_user,
                    unionid,
                })) => {
                    let logged_in = LoggedIn {
                        token,
                        user_id,
                        new_user,
                        unionid,
                    };
                    return Ok(Ok((logged_in, session)));
                }
                Some(Ok(LoginOutcome::Disabled { .. })) => return Ok(Err(())),
                Some(Err(StoreError::AlreadyExists)) => {
                    warn!("session token collided with an existing item; drawing another");
                }
                Some(Err(err @ StoreError::Refused(_))) => {
                    warn!(error = %err, "session write refused");
                    return Err(ApiError::Unavailable(Upstream::SessionTable));
                }
                Some(Err(err)) => {
                    warn!(error = %err, "session write failed; reading back whether it committed");
                    return self
                        .committed_anyway(token, &key, &session, deadline)
                        .await
                        .map(|logged_in| Ok((logged_in, session.clone())));
                }
                None => {
                    warn!("session write ran out of time; reading back whether it committed");
                    return self
                        .committed_anyway(token, &key, &session, deadline)
                        .await
                        .map(|logged_in| Ok((logged_in, session.clone())));
                }
            }
        }
        tracing::error!("session token collided {TOKEN_ATTEMPTS} times in a row");
        Err(ApiError::Unavailable(Upstream::SessionTable))
    }

    /// After a write whose outcome is unknown: the login if its session is in
    /// the table (read consistently), else 503. The session carries the
    /// account's userId: the candidate's means this login created the account.
    async fn committed_anyway(
        &self,
        token: SessionToken,
        key: &TokenKey,
        written: &Session,
        deadline: Deadline,
    ) -> Result<LoggedIn, ApiError> {
        match deadline.run(self.store.get(key)).await {
            Some(Ok(Some(stored))) => {
                info!("the session write committed though its answer was lost");
                metrics::count(Metric::SessionWriteConfirmed, &[]);
                Ok(LoggedIn {
                    new_user: stored.user_id == written.user_id,
                    user_id: stored.user_id,
                    unionid: stored.unionid,
                    token,
                })
            }
            Some(Ok(None)) => Err(ApiError::Unavailable(Upstream::SessionTable)),
            Some(Err(err)) => {
                warn!(error = %err, "reading back the session failed");
                Err(ApiError::Unavailable(Upstream::SessionTable))
            }
            None => {
                warn!("reading back the session ran out of time");
                Err(ApiError::Unavailable(Upstream::SessionTable))
            }
        }
    }
}

impl<S: SessionStore + PublicKeyStore, W: WeChatApi, K: SecretSource, J: SigningKeySource> Handler
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
