//! WeChat's server API: the calls we make, their answers and the retry policy.

mod http;

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

pub use http::HttpWeChat;

use crate::deadline::Deadline;
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

    /// For calls authorised by an access token, 40001 means the token (not the
    /// appsecret) is bad; 40014 and 42001 say the same.
    pub fn from_token_call_errcode(errcode: i64) -> Self {
        match errcode {
            40001 | 40014 | 42001 => Self::TokenRejected(errcode),
            other => Self::from_errcode(other),
        }
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

/// A WeChat answer as a JSON object with its errcode (0 when absent).
fn parse_answer(body: &[u8]) -> Result<(serde_json::Map<String, Value>, i64), WeChatError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| WeChatError::Malformed("not JSON"))?;
    let Value::Object(object) = value else {
        return Err(WeChatError::Malformed("not a JSON object"));
    };
    let errcode = match object.get("errcode") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or(WeChatError::Malformed("errcode is not an integer"))?,
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| WeChatError::Malformed("errcode is not an integer"))?,
        Some(_) => return Err(WeChatError::Malformed("errcode is not an integer")),
    };
    Ok((object, errcode))
}

fn non_empty_str(object: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    object
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Parses a `stable_token` answer: `{"access_token": .., "expires_in": ..}`.
/// Here 40001 and 40125 are about the appsecret, as for jscode2session.
pub fn parse_stable_token(body: &[u8]) -> Result<FetchedToken, WeChatError> {
    let (object, errcode) = parse_answer(body)?;
    if errcode != 0 {
        return Err(WeChatError::from_errcode(errcode));
    }
    let token =
        non_empty_str(&object, "access_token").ok_or(WeChatError::Malformed("no access_token"))?;
    let expires_in = object
        .get("expires_in")
        .and_then(Value::as_i64)
        .filter(|&seconds| seconds > 0)
        .ok_or(WeChatError::Malformed("no positive expires_in"))?;
    Ok(FetchedToken {
        token: AccessToken::new(token),
        expires_in,
    })
}

/// Parses a `getuserphonenumber` answer. Its `countryCode` is a number.
pub fn parse_phone_number(body: &[u8]) -> Result<PhoneInfo, WeChatError> {
    let (object, errcode) = parse_answer(body)?;
    if errcode != 0 {
        return Err(WeChatError::from_token_call_errcode(errcode));
    }
    let info = object
        .get("phone_info")
        .and_then(Value::as_object)
        .ok_or(WeChatError::Malformed("no phone_info"))?;
    Ok(PhoneInfo {
        phone: PhoneNumber::from_fields(info).ok_or(WeChatError::Malformed("no phone fields"))?,
        watermark_appid: info
            .get("watermark")
            .and_then(|w| w.get("appid"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Parses a `checksession` answer. Only errcode 0 is a valid key and only 87009
/// an invalid one: an HTTP 200 alone proves nothing.
pub fn parse_check_session(body: &[u8]) -> Result<SessionKeyStatus, WeChatError> {
    let (object, errcode) = parse_answer(body)?;
    match errcode {
        0 if object.contains_key("errcode") => Ok(SessionKeyStatus::Valid),
        0 => Err(WeChatError::Malformed("no errcode")),
        87009 => Ok(SessionKeyStatus::Invalid),
        other => Err(WeChatError::from_token_call_errcode(other)),
    }
}

/// Parses a `jscode2session` answer. It is JSON whatever the Content-Type says,
/// and `errcode` is absent on success.
pub fn parse_jscode2session(body: &[u8]) -> Result<WxSession, WeChatError> {
    let (object, errcode) = parse_answer(body)?;
    if errcode != 0 {
        return Err(WeChatError::from_errcode(errcode));
    }
    let text = |name: &str| non_empty_str(&object, name);
    Ok(WxSession {
        openid: text("openid").ok_or(WeChatError::Malformed("no openid"))?,
        session_key: SessionKey::new(
            text("session_key").ok_or(WeChatError::Malformed("no session_key"))?,
        ),
        unionid: text("unionid"),
    })
}

/// How hard to try a WeChat call before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// First backoff; doubles each time, with full jitter.
    pub base_backoff: Duration,
    /// Upper bound for one attempt; the request deadline may cut it shorter.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_backoff: Duration::from_millis(100),
            attempt_timeout: Duration::from_secs(3),
        }
    }
}

/// Below this, another attempt could not finish anyway.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

/// Runs `attempt` until it succeeds, fails for good, runs out of attempts or runs
/// into the deadline. Only transient failures are retried.
pub async fn with_retry<T, F, Fut>(
    policy: RetryPolicy,
    deadline: Deadline,
    mut attempt: F,
) -> Result<T, WeChatError>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, WeChatError>>,
{
    let mut last = WeChatError::Timeout;
    for n in 0..policy.max_attempts.max(1) {
        let remaining = deadline.remaining();
        if remaining < MIN_ATTEMPT {
            break;
        }
        let timeout = policy.attempt_timeout.min(remaining);
        let outcome = tokio::time::timeout(timeout, attempt(timeout))
            .await
            .unwrap_or(Err(WeChatError::Timeout));
        match outcome {
            Ok(value) => return Ok(value),
            Err(err) if !err.is_transient() => return Err(err),
            Err(err) => last = err,
        }
        if n + 1 == policy.max_attempts {
            break;
        }
        let backoff = jittered(policy.base_backoff.saturating_mul(1 << n.min(16)));
        if deadline.remaining() < backoff + MIN_ATTEMPT {
            break;
        }
        tokio::time::sleep(backoff).await;
    }
    Err(last)
}

/// Full jitter: uniform in [0, ceiling]. Spreads retries of many containers apart.
fn jittered(ceiling: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return ceiling / 2;
    }
    let fraction = f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX);
    ceiling.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn success_without_errcode() {
        let session =
            parse_jscode2session(br#"{"openid":"o1","session_key":"k==","unionid":"u1"}"#).unwrap();
        assert_eq!(session.openid, "o1");
        assert_eq!(session.session_key.expose(), "k==");
        assert_eq!(session.unionid.as_deref(), Some("u1"));
        let session =
            parse_jscode2session(br#"{"errcode":0,"openid":"o1","session_key":"k"}"#).unwrap();
        assert_eq!(session.unionid, None);
    }

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

    #[test]
    fn stable_token_answers() {
        let token = parse_stable_token(br#"{"access_token":"AT","expires_in":7200}"#).unwrap();
        assert_eq!(token.token.expose(), "AT");
        assert_eq!(token.expires_in, 7200);
        assert_eq!(
            parse_stable_token(br#"{"errcode":40125,"errmsg":"invalid appsecret"}"#),
            Err(WeChatError::BadCredential(40125))
        );
        assert_eq!(
            parse_stable_token(br#"{"errcode":45009}"#),
            Err(WeChatError::Other(45009))
        );
        assert_eq!(
            parse_stable_token(br#"{"access_token":"AT","expires_in":0}"#),
            Err(WeChatError::Malformed("no positive expires_in"))
        );
        assert_eq!(
            parse_stable_token(br#"{"expires_in":7200}"#),
            Err(WeChatError::Malformed("no access_token"))
        );
    }

    #[test]
    fn phone_number_answers() {
        let info = parse_phone_number(
            br#"{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+86 13800138000","purePhoneNumber":"13800138000","countryCode":86,"watermark":{"timestamp":1637744274,"appid":"wxapp"}}}"#,
        )
        .unwrap();
        assert_eq!(info.phone.phone_number, "+86 13800138000");
        assert_eq!(info.phone.pure_phone_number, "13800138000");
        assert_eq!(info.phone.country_code, "86");
        assert_eq!(info.watermark_appid.as_deref(), Some("wxapp"));
        for (body, want) in [
            (
                &br#"{"errcode":40029}"#[..],
                WeChatError::InvalidCode(40029),
            ),
            (br#"{"errcode":40001}"#, WeChatError::TokenRejected(40001)),
            (br#"{"errcode":40014}"#, WeChatError::TokenRejected(40014)),
            (br#"{"errcode":42001}"#, WeChatError::TokenRejected(42001)),
            (br#"{"errcode":45011}"#, WeChatError::RateLimited),
            (br#"{"errcode":-1}"#, WeChatError::Busy),
            (br#"{"errcode":40013}"#, WeChatError::Other(40013)),
            (br#"{"errcode":0}"#, WeChatError::Malformed("no phone_info")),
            (
                br#"{"phone_info":{"phoneNumber":"1"}}"#,
                WeChatError::Malformed("no phone fields"),
            ),
        ] {
            assert_eq!(
                parse_phone_number(body),
                Err(want),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn check_session_answers() {
        assert_eq!(
            parse_check_session(br#"{"errcode":0,"errmsg":"ok"}"#),
            Ok(SessionKeyStatus::Valid)
        );
        assert_eq!(
            parse_check_session(br#"{"errcode":87009,"errmsg":"invalid signature"}"#),
            Ok(SessionKeyStatus::Invalid)
        );
        // An HTTP 200 without an errcode is not a yes.
        assert_eq!(
            parse_check_session(b"{}"),
            Err(WeChatError::Malformed("no errcode"))
        );
        assert_eq!(
            parse_check_session(br#"{"errcode":42001}"#),
            Err(WeChatError::TokenRejected(42001))
        );
        assert_eq!(
            parse_check_session(b"<html>"),
            Err(WeChatError::Malformed("not JSON"))
        );
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(1),
            attempt_timeout: Duration::from_millis(200),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_up_to_the_limit() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> =
            with_retry(fast(), Deadline::after(Duration::from_secs(5)), |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(WeChatError::Busy) }
            })
            .await;
        assert_eq!(result, Err(WeChatError::Busy));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn transient_then_success() {
        let calls = AtomicU32::new(0);
        let result = with_retry(fast(), Deadline::after(Duration::from_secs(5)), |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(WeChatError::Transport("reset".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result, Ok(1));
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        for err in [
            WeChatError::InvalidCode(40029),
            WeChatError::InvalidCode(40163),
            WeChatError::Blocked,
            WeChatError::RateLimited,
            WeChatError::BadCredential(40001),
        ] {
            let calls = AtomicU32::new(0);
            let result: Result<(), _> =
                with_retry(fast(), Deadline::after(Duration::from_secs(5)), |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let err = err.clone();
                    async move { Err(err) }
                })
                .await;
            assert_eq!(result, Err(err));
            assert_eq!(calls.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test]
    async fn a_hanging_call_is_cut_at_the_deadline() {
        let started = std::time::Instant::now();
        let result: Result<(), _> = with_retry(
            RetryPolicy {
                attempt_timeout: Duration::from_secs(10),
                ..fast()
            },
            Deadline::after(Duration::from_millis(300)),
            |_| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            },
        )
        .await;
        assert_eq!(result, Err(WeChatError::Timeout));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_within_the_ceiling() {
        for _ in 0..100 {
            assert!(jittered(Duration::from_millis(100)) <= Duration::from_millis(100));
        }
    }
}
