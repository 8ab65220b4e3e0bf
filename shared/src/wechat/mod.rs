//! WeChat's server API: the calls we make, their answers and the retry policy.

mod http;

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

pub use http::HttpWeChat;

use crate::deadline::Deadline;
use crate::redact::{AppSecret, SessionKey};

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
}

/// Parses a `jscode2session` answer. It is JSON whatever the Content-Type says,
/// and `errcode` is absent on success.
pub fn parse_jscode2session(body: &[u8]) -> Result<WxSession, WeChatError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| WeChatError::Malformed("not JSON"))?;
    let object = value
        .as_object()
        .ok_or(WeChatError::Malformed("not a JSON object"))?;
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
    if errcode != 0 {
        return Err(WeChatError::from_errcode(errcode));
    }
    let text = |name: &str| {
        object
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
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
