//! The one error type of the HTTP API: the contract's status, code and message
//! for each failure, and what every domain failure means to the client.

use tracing::warn;

use crate::domain::wechat::WeChatError;
pub use crate::ports::errors::Upstream;
use crate::ports::errors::UpstreamError;

/// Retry-After for 503: the SDK and our own retries already spent the quick
/// chances, so ask for a short pause rather than an instant hammer.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u32 = 2;
/// Retry-After for 429: WeChat's 45011 limit is counted per minute.
pub const RETRY_AFTER_RATE_LIMITED_SECS: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the message says which field and why.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid code")]
    InvalidCode,
    /// The same `invalid_code`, for a getPhoneNumber code: the session is
    /// fine, so the advice differs from login's (a new code from the button,
    /// not wx.login).
    #[error("invalid phone code")]
    InvalidPhoneCode,
    /// 401: the message says whether the token was missing, malformed or unknown.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("signature mismatch")]
    SignatureMismatch,
    #[error("session_key invalid")]
    SessionKeyInvalid,
    /// A refreshed session whose login's session_key is no longer kept.
    #[error("session_key expired")]
    SessionKeyExpired,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("login blocked")]
    LoginBlocked,
    /// The operator disabled the account: no login, no refresh.
    #[error("account disabled")]
    AccountDisabled,
    /// `RISK_CONTROL=enforce` refused a sign-up WeChat ranked too risky.
    #[error("risk rejected")]
    RiskRejected,
    /// 400: the request names an app that is not one of `WECHAT_APPS`.
    #[error("unknown app")]
    UnknownApp,
    /// 400: the route needs a mini-program session; this one came from an `oauth` app.
    #[error("unsupported for app")]
    UnsupportedForApp,
    /// 404: no route at this path.
    #[error("not found")]
    NotFound,
    /// 405, with the methods the route does serve.
    #[error("method not allowed")]
    MethodNotAllowed { allowed: &'static str },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("decrypt failed")]
    DecryptFailed,
    #[error("rate limited")]
    RateLimited,
    /// 502: the errcode when there was one.
    #[error("wechat error")]
    WeChat { errcode: Option<i64> },
    /// 503: names the service, never its error text.
    #[error("{0} unavailable")]
    Unavailable(Upstream),
}

impl ApiError {
    /// One error of each kind, for the documentation checks. Adding a kind
    /// breaks the match below until it is listed here too.
    pub fn every_kind() -> Vec<ApiError> {
        let kinds = vec![
            Self::InvalidRequest(String::new()),
            Self::InvalidCode,
            Self::InvalidPhoneCode,
            Self::Unauthorized(""),
            Self::SignatureMismatch,
            Self::SessionKeyInvalid,
            Self::SessionKeyExpired,
            Self::InvalidRefreshToken,
            Self::LoginBlocked,
            Self::AccountDisabled,
            Self::RiskRejected,
            Self::UnknownApp,
            Self::UnsupportedForApp,
            Self::NotFound,
            Self::MethodNotAllowed { allowed: "GET" },
            Self::PayloadTooLarge,
            Self::DecryptFailed,
            Self::RateLimited,
            Self::WeChat { errcode: None },
            Self::Unavailable(Upstream::WeChat),
        ];
        for kind in &kinds {
            match kind {
                Self::InvalidRequest(_)
                | Self::InvalidCode
                | Self::InvalidPhoneCode
                | Self::Unauthorized(_)
                | Self::SignatureMismatch
                | Self::SessionKeyInvalid
                | Self::SessionKeyExpired
                | Self::InvalidRefreshToken
                | Self::LoginBlocked
                | Self::AccountDisabled
                | Self::RiskRejected
                | Self::UnknownApp
                | Self::UnsupportedForApp
                | Self::NotFound
                | Self::MethodNotAllowed { .. }
                | Self::PayloadTooLarge
                | Self::DecryptFailed
                | Self::RateLimited
                | Self::WeChat { .. }
                | Self::Unavailable(_) => {}
            }
        }
        kinds
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_) | Self::UnknownApp | Self::UnsupportedForApp => 400,
            Self::InvalidCode
            | Self::InvalidPhoneCode
            | Self::Unauthorized(_)
            | Self::SignatureMismatch
            | Self::SessionKeyInvalid
            | Self::SessionKeyExpired
            | Self::InvalidRefreshToken => 401,
            Self::LoginBlocked | Self::AccountDisabled | Self::RiskRejected => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::PayloadTooLarge => 413,
            Self::DecryptFailed => 422,
            Self::RateLimited => 429,
            Self::WeChat { .. } => 502,
            Self::Unavailable(_) => 503,
        }
    }

    /// The contract's `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidCode | Self::InvalidPhoneCode => "invalid_code",
            Self::Unauthorized(_) => "unauthorized",
            Self::SignatureMismatch => "signature_mismatch",
            Self::SessionKeyInvalid => "session_key_invalid",
            Self::SessionKeyExpired => "session_key_expired",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::LoginBlocked => "login_blocked",
            Self::AccountDisabled => "account_disabled",
            Self::RiskRejected => "risk_rejected",
            Self::UnknownApp => "unknown_app",
            Self::UnsupportedForApp => "unsupported_for_app",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::DecryptFailed => "decrypt_failed",
            Self::RateLimited => "rate_limited",
            Self::WeChat { .. } => "wechat_error",
            Self::Unavailable(_) => "upstream_unavailable",
        }
    }

    /// One sentence a developer can act on.
    pub fn message(&self) -> String {
        match self {
            Self::InvalidRequest(message) => message.clone(),
            Self::InvalidCode => "WeChat refused the login code: it is invalid or was already used. Call wx.login again and send the new code.".into(),
            Self::InvalidPhoneCode => "WeChat refused the phone number code: it is invalid, was already used or has expired. The session is still valid: ask the user to tap the getPhoneNumber button again and send the new code (no wx.login needed).".into(),
            Self::Unauthorized(reason) => (*reason).into(),
            Self::SignatureMismatch => "The rawData signature does not match this session's session_key, which a later wx.login may have refreshed: log in again and fetch the user info anew.".into(),
            Self::SessionKeyInvalid => "WeChat no longer holds this session's session_key: log in again with wx.login.".into(),
            Self::SessionKeyExpired => "This session was renewed with a refresh token and the session_key of its login is no longer kept: call wx.login and POST /login, then retry.".into(),
            Self::InvalidRefreshToken => "The refresh token is unknown, expired, revoked or already used: call wx.login and POST /login.".into(),
            Self::LoginBlocked => "WeChat refused this login because it judged the user high-risk (errcode 40226).".into(),
            Self::AccountDisabled => "This account has been disabled by the app's operator: it cannot log in. Contact the app's support.".into(),
            Self::RiskRejected => "WeChat rated this new user too risky to sign up (getuserriskrank): no account was created.".into(),
            Self::UnknownApp => "appid names no app this server serves (WECHAT_APPS): send one of its appids, or leave appid out for the default app.".into(),
            Self::UnsupportedForApp => "This route needs a mini-program session (a session_key, a mini-program openid); this session comes from an oauth app (official-account H5, website or mobile app): log in through the mini-program for it.".into(),
            Self::NotFound => "No route serves this path: the API serves POST /login, POST /phone, POST /open-data, POST /refresh, GET, POST, DELETE /session, GET, DELETE /account, GET /me, GET /.well-known/jwks.json and GET /.well-known/openid-configuration.".into(),
            Self::MethodNotAllowed { allowed } => format!("This route serves only {allowed}."),
            Self::PayloadTooLarge => "The request body is over 16384 bytes.".into(),
            Self::DecryptFailed => "The data could not be decrypted with this session's session_key, which a later wx.login may have refreshed: log in again, then request the data anew.".into(),
            Self::RateLimited => "WeChat rate-limited this request (errcode 45011): retry after the Retry-After delay.".into(),
            Self::WeChat { errcode: Some(errcode) } => format!("WeChat answered errcode {errcode}, which this server does not handle: check the app's configuration, or retry later."),
            Self::WeChat { errcode: None } => "WeChat answered something that is not a usable reply: retry later.".into(),
            Self::Unavailable(upstream) => format!("{upstream} is unavailable or did not answer in time: retry after the Retry-After delay."),
        }
    }
}

impl From<UpstreamError> for ApiError {
    fn from(err: UpstreamError) -> Self {
        match err {
            UpstreamError::WeChat(err) => err.into(),
            UpstreamError::Unavailable(upstream) => Self::Unavailable(upstream),
        }
    }
}

/// What each WeChat failure means to the client.
impl From<WeChatError> for ApiError {
    fn from(err: WeChatError) -> Self {
        match err {
            WeChatError::InvalidCode(_) => ApiError::InvalidCode,
            WeChatError::Blocked => ApiError::LoginBlocked,
            WeChatError::RateLimited => ApiError::RateLimited,
            WeChatError::Busy | WeChatError::Transport(_) | WeChatError::Timeout => {
                warn!(error = %err, "WeChat unavailable after retries");
                ApiError::Unavailable(Upstream::WeChat)
            }
            WeChatError::BadCredential(errcode)
            | WeChatError::TokenRejected(errcode)
            | WeChatError::Other(errcode) => {
                warn!(errcode, "WeChat answered an errcode we cannot handle");
                ApiError::WeChat {
                    errcode: Some(errcode),
                }
            }
            WeChatError::Malformed(reason) => {
                warn!(reason, "WeChat answered something unusable");
                ApiError::WeChat { errcode: None }
            }
        }
    }
}
