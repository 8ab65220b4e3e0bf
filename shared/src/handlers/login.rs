//! `POST /login`: code → WeChat `jscode2session` → a session of our own.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tracing::{info, warn};

use crate::api::{ApiRequest, ApiResponse, Handler, JsonBody, Route, code_field};
use crate::deadline::Deadline;
use crate::error::{ApiError, Upstream};
use crate::metrics::{self, Metric};
use crate::redact::{AppSecret, mask_openid};
use crate::secret::{SecretSource, with_appsecret};
use crate::session::{Access, Session, SessionStore, StoreError, epoch_seconds};
use crate::token::SessionToken;
use crate::upstream::UpstreamError;
use crate::wechat::{RetryPolicy, WeChatApi, WeChatError, WxSession, with_retry};

/// A token collision is a 2^-128 event; a second one in a row means a broken RNG.
const TOKEN_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct LoginSettings {
    pub appid: String,
    pub session_ttl_seconds: i64,
    pub retry: RetryPolicy,
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
    openid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unionid: Option<&'a str>,
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
        let wx = self.code_to_session(code, request.deadline).await?;
        let token = self.create_session(&wx, request.deadline).await?;
        info!(openid = %mask_openid(&wx.openid), "login succeeded");
        Ok(ApiResponse::json(
            200,
            &LoginBody {
                token: token.expose(),
                expires_in: self.settings.session_ttl_seconds,
                openid: &wx.openid,
                unionid: wx.unionid.as_deref(),
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

    /// One code, tried as the retry policy allows. A 40163 (code used) after one
    /// of our own attempts failed in transit most likely means that attempt
    /// reached WeChat and spent the code: logged and counted apart, since the
    /// fix is on our side (attempt timeout, network), not the client's. The
    /// client still gets 401 invalid_code: the code is gone either way.
    async fn jscode2session(
        &self,
        secret: &AppSecret,
        code: &str,
        deadline: Deadline,
    ) -> Result<WxSession, WeChatError> {
        let lost_in_transit = AtomicBool::new(false);
        let result = with_retry(self.settings.retry, deadline, |timeout| {
            let lost_in_transit = &lost_in_transit;
            async move {
                let answer = self
                    .wechat
                    .jscode2session(&self.settings.appid, secret, code, timeout)
                    .await;
                if matches!(
                    &answer,
                    Err(WeChatError::Timeout | WeChatError::Transport(_))
                ) {
                    lost_in_transit.store(true, Ordering::Relaxed);
                }
                answer
            }
        })
        .await;
        if matches!(result, Err(WeChatError::InvalidCode(40163)))
            && lost_in_transit.load(Ordering::Relaxed)
        {
            warn!(
                "WeChat says the code was used: our own earlier attempt, which failed in transit, most likely spent it"
            );
            metrics::count(Metric::CodeSpentByOurRetry, &[]);
        }
        result
    }

    /// Stores the session under a fresh token. A 200 is only ever sent after the
    /// write succeeded, so every token handed out works.
    async fn create_session(
        &self,
        wx: &WxSession,
        deadline: Deadline,
    ) -> Result<SessionToken, ApiError> {
        let now = epoch_seconds();
        let session = Session {
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
            let write = async {
                if self.single_session {
                    self.store.create_exclusive(&key, &session).await
                } else {
                    self.store.create(&key, &session).await
                }
            };
            match deadline.run(write).await {
                Some(Ok(())) => return Ok(token),
                Some(Err(StoreError::AlreadyExists)) => {
                    warn!("session token collided with an existing item; drawing another");
                }
                Some(Err(err)) => {
                    warn!(error = %err, "session write failed");
                    return Err(ApiError::Unavailable(Upstream::SessionTable));
                }
                None => {
                    warn!("session write ran out of time");
                    return Err(ApiError::Unavailable(Upstream::SessionTable));
                }
            }
        }
        tracing::error!("session token collided {TOKEN_ATTEMPTS} times in a row");
        Err(ApiError::Unavailable(Upstream::SessionTable))
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
