//! What WeChat answers, in the domain's terms: the answers of the calls we
//! make and what can go wrong, by errcode. (The calls themselves are the
//! `ports::wechat::WeChatApi` port; the HTTP client is in `crate::wechat`.)

use super::phone::PhoneNumber;
use super::redact::{AccessToken, SessionKey};

pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// The answer of `jscode2session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxSession {
    pub openid: String,
    pub unionid: Option<String>,
    pub session_key: SessionKey,
}

/// The answer of `sns/oauth2/access_token` (an `oauth` app's login): the
/// user's openid, a unionid when the app is bound to an Open Platform
/// account, and the user's own access token, which only ever goes back to
/// `sns/userinfo` (never kept, logged or returned: it prints redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthGrant {
    pub openid: String,
    pub unionid: Option<String>,
    /// Comma-separated, as WeChat writes it: `snsapi_base`, `snsapi_userinfo`, `snsapi_login`.
    pub scope: String,
    pub access_token: AccessToken,
}

impl OAuthGrant {
    /// The user agreed to share their profile: `sns/userinfo` may be asked for
    /// the unionid the token answer left out.
    pub fn allows_userinfo(&self) -> bool {
        self.scope
            .split(',')
            .any(|scope| scope.trim() == "snsapi_userinfo")
    }
}

/// Who WeChat says signed in, whichever way: the app's openid, the unionid
/// when WeChat gave one, and a mini-program's session_key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub openid: String,
    pub unionid: Option<String>,
    pub session_key: Option<SessionKey>,
}

impl From<WxSession> for SignedIn {
    fn from(wx: WxSession) -> Self {
        Self {
            openid: wx.openid,
            unionid: wx.unionid,
            session_key: Some(wx.session_key),
        }
    }
}

/// `wxa/getuserriskrank`'s `risk_rank`: 0 (lowest) to 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RiskRank(u8);

impl RiskRank {
    pub const HIGHEST: u8 = 4;

    pub fn new(rank: i64) -> Option<Self> {
        u8::try_from(rank)
            .ok()
            .filter(|rank| *rank <= Self::HIGHEST)
            .map(Self)
    }

    pub fn get(self) -> u8 {
        self.0
    }
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

/// What can go wrong calling WeChat. Messages never carry the request URL (it holds
/// the appsecret) nor WeChat's free-text errmsg.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeChatError {
    /// 40029 (invalid code) or 40163 (code already used).
    #[error("code refused (errcode {0})")]
    InvalidCode(i64),
    /// 40226: WeChat judged the user high-risk.
    #[error("login blocked (errcode 40226)")]
    Blocked,
    /// 45011: the API frequency limit.
    #[error("rate limited (errcode 45011)")]
    RateLimited,
    /// -1: system busy, worth a retry.
    #[error("system busy (errcode -1)")]
    Busy,
    /// 40001 or 40125: the appsecret was refused, perhaps rotated.
    #[error("appsecret refused (errcode {0})")]
    BadCredential(i64),
    /// 40001, 40014 or 42001 on a call made with an access token: the token is
    /// invalid or expired, and only a fresh one helps.
    #[error("access token refused (errcode {0})")]
    TokenRejected(i64),
    #[error("unexpected errcode {0}")]
    Other(i64),
    /// Not JSON, no openid, too large: WeChat said something we cannot use.
    #[error("unusable answer: {0}")]
    Malformed(&'static str),
    #[error("transport error: {0}")]
    Transport(String),
    #[error("timed out")]
    Timeout,
}

impl WeChatError {
    /// Only a busy WeChat and a broken connection are worth trying again; every
    /// other answer would come back the same.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Busy | Self::Transport(_) | Self::Timeout)
    }

    pub fn from_errcode(errcode: i64) -> Self {
        match errcode {
            40029 | 40163 => Self::InvalidCode(errcode),
            40226 => Self::Blocked,
            45011 => Self::RateLimited,
            -1 => Self::Busy,
            40001 | 40125 => Self::BadCredential(errcode),
            other => Self::Other(other),
        }
    }

    /// What a call's metric records as its result: WeChat's errcode, or how the
    /// call failed without one.
    pub fn result_label(&self) -> String {
        match self {
            Self::InvalidCode(errcode)
            | Self::BadCredential(errcode)
            | Self::TokenRejected(errcode)
            | Self::Other(errcode) => errcode.to_string(),
            Self::Blocked => "40226".into(),
            Self::RateLimited => "45011".into(),
            Self::Busy => "-1".into(),
            Self::Malformed(_) => "malformed".into(),
            Self::Transport(_) => "transport".into(),
            Self::Timeout => "timeout".into(),
        }
    }

    /// For calls authorised by an access token, 40001 means the token (not the
    /// appsecret) is bad; 40014 and 42001 say the same.
    pub fn from_token_call_errcode(errcode: i64) -> Self {
        match errcode {
            40001 | 40014 | 42001 => Self::TokenRejected(errcode),
            other => Self::from_errcode(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::parse_jscode2session;

    #[test]
    fn errcodes_map_to_typed_errors() {
        for (body, want) in [
            (
                &br#"{"errcode":40029,"errmsg":"invalid code"}"#[..],
                WeChatError::InvalidCode(40029),
            ),
            (
                br#"{"errcode":40163,"errmsg":"code been used"}"#,
                WeChatError::InvalidCode(40163),
            ),
            (br#"{"errcode":40226}"#, WeChatError::Blocked),
            (br#"{"errcode":45011}"#, WeChatError::RateLimited),
            (br#"{"errcode":-1}"#, WeChatError::Busy),
            (br#"{"errcode":"-1"}"#, WeChatError::Busy),
            (br#"{"errcode":40001}"#, WeChatError::BadCredential(40001)),
            (br#"{"errcode":40125}"#, WeChatError::BadCredential(40125)),
            (br#"{"errcode":40013}"#, WeChatError::Other(40013)),
            (
                b"<html>502 Bad Gateway</html>",
                WeChatError::Malformed("not JSON"),
            ),
            (b"[]", WeChatError::Malformed("not a JSON object")),
            (
                br#"{"session_key":"k"}"#,
                WeChatError::Malformed("no openid"),
            ),
            (
                br#"{"openid":"o"}"#,
                WeChatError::Malformed("no session_key"),
            ),
            (
                br#"{"errcode":1.5}"#,
                WeChatError::Malformed("errcode is not an integer"),
            ),
        ] {
            assert_eq!(
                parse_jscode2session(body),
                Err(want),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
