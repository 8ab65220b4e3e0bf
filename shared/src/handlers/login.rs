//! `POST /login`: code → WeChat `jscode2session` → a session of our own.

use std::time::Duration;

use serde::Serialize;
use tracing::{info, warn};

use crate::account::UserId;
use crate::api::{ApiRequest, ApiResponse, Handler, JsonBody, Route, code_field, invalid};
use crate::deadline::Deadline;
use crate::error::{ApiError, Upstream};
use crate::login_log::{LogEntry, LogEvent, device_fields, epoch_millis};
use crate::metrics::{self, Metric};
use crate::redact::{AppSecret, mask_openid};
use crate::secret::{SecretSource, with_appsecret};
use crate::session::{
    Access, LoginOutcome, LoginWrite, Session, SessionStore, StoreError, epoch_seconds,
};
use crate::token::SessionToken;
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

pub struct Login<S, W, K> {
    pub(super) store: S,
    pub(super) wechat: W,
    pub(super) secrets: K,
    settings: LoginSettings,
    tokens: TokenSource,
    single_session: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody<'a> {
    token: &'a str,
    expires_in: i64,
    user_id: &'a UserId,
    new_user: bool,
    openid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unionid: Option<&'a str>,
}

/// A login the store wrote.
struct LoggedIn {
    token: SessionToken,
    user_id: UserId,
    new_user: bool,
    unionid: Option<String>,
}

impl<S: SessionStore, W: WeChatApi, K: SecretSource> Login<S, W, K> {
    pub fn new(store: S, wechat: W, secrets: K, settings: LoginSettings) -> Self {
        Self {
            store,
            wechat,
            secrets,
            settings,
            tokens: Box::new(SessionToken::generate),
            single_session: true,
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
        let body = JsonBody::parse(&request.body)?;
        let code = code_field(&body)?;
        let device = match body.get("device") {
            Some(device) => Some(device_fields(device).map_err(invalid)?),
            None => None,
        };
        let wechat_deadline = request
            .deadline
            .before(SESSION_WRITE_BUDGET + READ_BACK_BUDGET);
        let wx = self.code_to_session(code, wechat_deadline).await?;
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
        let logged_in = match self
            .store_login(&wx, candidate, &log, request.deadline)
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
        info!(openid = %mask_openid(&wx.openid), new_user = logged_in.new_user, "login succeeded");
        Ok(ApiResponse::json(
            200,
            &LoginBody {
                token: logged_in.token.expose(),
                expires_in: self.settings.session_ttl_seconds,
                user_id: &logged_in.user_id,
                new_user: logged_in.new_user,
                openid: &wx.openid,
                unionid: wx.unionid.as_deref().or(logged_in.unionid.as_deref()),
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
        deadline: Deadline,
    ) -> Result<Result<LoggedIn, ()>, ApiError> {
        let now = epoch_seconds();
        let session = Session {
            user_id: candidate,
            openid: wx.openid.clone(),
            unionid: wx.unionid.clone(),
            session_key: wx.session_key.clone(),
            created_at: now,
            expires_at: now + self.settings.session_ttl_seconds,
        };
        for _ in 0..TOKEN_ATTEMPTS {
            let token = (self.tokens)().map_err(|err| {
                tracing::error!(error = %err, "the OS random source failed");
                ApiError::Unavailable(Upstream::SessionTable)
            })?;
            let key = token.key();
            let write = LoginWrite {
                key: &key,
                session: &session,
                single_session: self.single_session,
                log: Some(log),
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
                    return Ok(Ok(LoggedIn {
                        token,
                        user_id,
                        new_user,
                        unionid,
                    }));
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
                        .committed_anyway(token, &session, deadline)
                        .await
                        .map(Ok);
                }
                None => {
                    warn!("session write ran out of time; reading back whether it committed");
                    return self
                        .committed_anyway(token, &session, deadline)
                        .await
                        .map(Ok);
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
        written: &Session,
        deadline: Deadline,
    ) -> Result<LoggedIn, ApiError> {
        match deadline.run(self.store.get(&token.key())).await {
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

impl<S: SessionStore, W: WeChatApi, K: SecretSource> Handler for Login<S, W, K> {
    fn serves(&self, route: Route) -> bool {
        route == Route::Login
    }

    async fn handle(&self, _: Route, request: ApiRequest) -> ApiResponse {
        self.login(request).await.unwrap_or_else(ApiResponse::from)
    }
}
