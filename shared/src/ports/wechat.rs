//! WeChat's server API as a port: the calls we make, one attempt each. The
//! HTTP client is `crate::wechat::HttpWeChat`; retries, the appsecret and the
//! shared access token are wrapped around it there.

use std::future::Future;
use std::time::Duration;

use crate::domain::redact::{AccessToken, AppSecret};
use crate::domain::wechat::{
    FetchedToken, OAuthGrant, PhoneInfo, RiskRank, SessionKeyStatus, WeChatError, WxSession,
};

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

    /// One `sns/oauth2/access_token` attempt: an `oauth` app's code.
    fn oauth_access_token(
        &self,
        _appid: &str,
        _secret: &AppSecret,
        _code: &str,
        _timeout: Duration,
    ) -> impl Future<Output = Result<OAuthGrant, WeChatError>> + Send {
        async {
            Err(WeChatError::Malformed(
                "sns/oauth2/access_token not supported by this client",
            ))
        }
    }

    /// One `sns/userinfo` attempt, for the unionid only (the rest of the
    /// profile is not kept): `None` when the answer has none.
    fn oauth_unionid(
        &self,
        _user_token: &AccessToken,
        _openid: &str,
        _timeout: Duration,
    ) -> impl Future<Output = Result<Option<String>, WeChatError>> + Send {
        async {
            Err(WeChatError::Malformed(
                "sns/userinfo not supported by this client",
            ))
        }
    }

    /// One `wxa/getuserriskrank` attempt, scene 0 (sign-up).
    fn user_risk_rank(
        &self,
        _token: &AccessToken,
        _appid: &str,
        _openid: &str,
        _client_ip: &str,
        _timeout: Duration,
    ) -> impl Future<Output = Result<RiskRank, WeChatError>> + Send {
        async {
            Err(WeChatError::Malformed(
                "getuserriskrank not supported by this client",
            ))
        }
    }
}
