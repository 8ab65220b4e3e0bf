//! WeChat's server API: the calls we make (`WeChatApi`, over HTTP in `http`),
//! what their answers mean (`answer`), what can go wrong (`error`) and how hard
//! we try (`retry`).

mod answer;
mod error;
mod http;
#[cfg(test)]
pub(crate) mod in_process;
mod retry;

use std::future::Future;
use std::time::Duration;

pub use answer::{
    parse_check_session, parse_jscode2session, parse_phone_number, parse_stable_token,
};
pub use error::WeChatError;
pub use http::HttpWeChat;
pub use retry::{OneTimeCode, RetryPolicy, with_retry};

use crate::phone::PhoneNumber;
use crate::redact::{AccessToken, AppSecret, SessionKey};

pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// The answer of `jscode2session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxSession {
    pub openid: String,
    pub unionid: Option<String>,
    pub session_key: SessionKey,
}

/// A token from `cgi-bin/stable_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedToken {
    pub token: AccessToken,
    /// Seconds WeChat says it stays valid.
    pub expires_in: i64,
}

/// `getuserphonenumber`'s `phone_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneInfo {
    pub phone: PhoneNumber,
    /// `watermark.appid`: must be ours.
    pub watermark_appid: Option<String>,
}

/// What `wxa/checksession` says about a session_key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKeyStatus {
    Valid,
    /// errcode 87009: WeChat no longer holds it (a later wx.login replaced it).
    Invalid,
}

pub trait WeChatApi: Send + Sync + 'static {
    /// Opens the connection during init so the first login skips DNS, TCP and
    /// TLS. Best effort.
    fn warm_up(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// One `jscode2session` attempt, given at most `timeout`.
    fn jscode2session(
        &self,
        appid: &str,
        secret: &AppSecret,
        code: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<WxSession, WeChatError>> + Send;

    /// One `cgi-bin/stable_token` attempt. `force_refresh` invalidates the
    /// current token for everyone; WeChat allows 20 of those a day.
    ///
    /// The access-token calls default to "unusable answer" so that a test
    /// double for login need not spell them out; every real client overrides them.
    fn stable_token(
        &self,
        _appid: &str,
        _secret: &AppSecret,
        _force_refresh: bool,
        _timeout: Duration,
    ) -> impl Future<Output = Result<FetchedToken, WeChatError>> + Send {
        async {
            Err(WeChatError::Malformed(
                "stable_token not supported by this client",
            ))
        }
    }

    /// One `wxa/business/getuserphonenumber` attempt.
    fn get_phone_number(
        &self,
        _token: &AccessToken,
        _code: &str,
        _openid: &str,
        _timeout: Duration,
    ) -> impl Future<Output = Result<PhoneInfo, WeChatError>> + Send {
        async {
            Err(WeChatError::Malformed(
                "getuserphonenumber not supported by this client",
            ))
        }
    }

    /// One `wxa/checksession` attempt; `signature` is `checksession_signature`.
    fn check_session_key(
        &self,
        _token: &AccessToken,
        _openid: &str,
        _signature: &str,
        _timeout: Duration,
    ) -> impl Future<Output = Result<SessionKeyStatus, WeChatError>> + Send {
        async {
            Err(WeChatError::Malformed(
                "checksession not supported by this client",
            ))
        }
    }
}
