//! How hard a WeChat call is tried: attempts, jittered backoff, the deadline.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tracing::warn;

use crate::domain::wechat::WeChatError;
use crate::runtime::backoff::full_jitter;
use crate::runtime::deadline::Deadline;
use crate::runtime::metrics;
use crate::runtime::metrics::Metric;

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
        let backoff = full_jitter(policy.base_backoff, n, Duration::MAX);
        if deadline.remaining() < backoff + MIN_ATTEMPT {
            break;
        }
        tokio::time::sleep(backoff).await;
    }
    Err(last)
}

/// Watches the attempts at a call that spends a one-time code (a wx.login code,
/// a getPhoneNumber code). When one of them is lost in transit (a timeout or a
/// transport error), WeChat may still have received it and spent the code, so a
/// later attempt's "invalid code" is most likely ours, not the client's: logged
/// and counted apart, since the fix is on our side (attempt timeout, network).
/// The client is still told the code is gone: it is, either way.
///
/// An attempt counts as lost unless its answer is seen: `with_retry`'s own
/// timeout drops an attempt's future before the HTTP client's timeout fires,
/// so "no answer" has to be the default, not something the attempt reports.
#[derive(Debug, Default)]
pub struct OneTimeCode {
    started: AtomicU32,
    answered: AtomicU32,
}

impl OneTimeCode {
    /// Runs one attempt, noting whether WeChat's answer came back.
    pub async fn attempt<T>(
        &self,
        call: impl Future<Output = Result<T, WeChatError>>,
    ) -> Result<T, WeChatError> {
        self.started.fetch_add(1, Ordering::Relaxed);
        let answer = call.await;
        if !matches!(
            answer,
            Err(WeChatError::Timeout | WeChatError::Transport(_))
        ) {
            self.answered.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    fn lost_in_transit(&self) -> bool {
        self.started.load(Ordering::Relaxed) > self.answered.load(Ordering::Relaxed)
    }

    /// Whether `result`, the call's final answer, is a code refusal that followed
    /// one of our own lost attempts. If so it is logged and counted
    /// (`CodeSpentByOurRetry`, dimension `Api`).
    pub fn spent_by_our_retry(&self, result: Option<&WeChatError>, api: &'static str) -> bool {
        let ours = matches!(result, Some(WeChatError::InvalidCode(_))) && self.lost_in_transit();
        if ours {
            warn!(
                api,
                "WeChat says the code was used: our own earlier attempt, which failed in transit, most likely spent it"
            );
            metrics::count(Metric::CodeSpentByOurRetry, &[("Api", api)]);
        }
        ours
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::deadline::ANSWER_WITHIN;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::time::Instant;

    /// Runs the production policy within `budget` on tokio's paused clock
    /// (it jumps to the next timer instead of waiting), the n-th attempt
    /// answering `attempt(n)`. Returns the result, the attempts made and the
    /// time they took.
    async fn retried<T, Fut>(
        budget: Duration,
        attempt: impl Fn(u32) -> Fut,
    ) -> (Result<T, WeChatError>, u32, Duration)
    where
        Fut: Future<Output = Result<T, WeChatError>>,
    {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result = with_retry(RetryPolicy::default(), Deadline::after(budget), |_| {
            attempt(calls.fetch_add(1, Ordering::SeqCst))
        })
        .await;
        (result, calls.load(Ordering::SeqCst), started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_up_to_the_limit() {
        let (result, calls, took) =
            retried(ANSWER_WITHIN, |_| async { Err::<(), _>(WeChatError::Busy) }).await;
        assert_eq!(result, Err(WeChatError::Busy));
        assert_eq!(calls, 3);
        // Two backoffs with full jitter: at most 100 ms + 200 ms.
        assert!(took <= Duration::from_millis(300), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn transient_then_success() {
        let (result, calls, _) = retried(ANSWER_WITHIN, |n| async move {
            match n {
                0 => Err(WeChatError::Transport("reset".into())),
                _ => Ok(n),
            }
        })
        .await;
        assert_eq!((result, calls), (Ok(1), 2));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        for err in [
            WeChatError::InvalidCode(40029),
            WeChatError::InvalidCode(40163),
            WeChatError::Blocked,
            WeChatError::RateLimited,
            WeChatError::BadCredential(40001),
        ] {
            let (result, calls, took) = retried(ANSWER_WITHIN, |_| {
                let err = err.clone();
                async move { Err::<(), _>(err) }
            })
            .await;
            assert_eq!((result, calls), (Err(err), 1));
            assert_eq!(took, Duration::ZERO, "no backoff");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn hanging_calls_end_at_the_deadline() {
        let (result, calls, took) = retried(ANSWER_WITHIN, |_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .await;
        assert_eq!(result, Err(WeChatError::Timeout));
        // 3 s, a backoff, 3 s, a backoff, and the third attempt cut at 8 s.
        assert_eq!(calls, 3);
        assert_eq!(took, ANSWER_WITHIN);
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_that_could_not_finish() {
        let (result, calls, _) = retried(Duration::from_millis(40), |_| async { Ok(()) }).await;
        assert_eq!((result, calls), (Err(WeChatError::Timeout), 0));
    }

    /// The code-spending call as the login makes it: attempt `n` answers `answer(n)`.
    async fn code_call(
        answer: impl Fn(u32) -> Option<WeChatError>,
    ) -> (Result<(), WeChatError>, bool) {
        let watch = OneTimeCode::default();
        let (result, _, _) = retried(ANSWER_WITHIN, |n| {
            let answer = answer(n);
            watch.attempt(async move {
                match answer {
                    // No answer at all: the retry policy's timeout drops this
                    // future, as it does a stalled HTTP call.
                    None => std::future::pending().await,
                    Some(err) => Err(err),
                }
            })
        })
        .await;
        let ours = watch.spent_by_our_retry(result.as_ref().err(), "jscode2session");
        (result, ours)
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_after_a_dropped_attempt_is_ours() {
        let (result, ours) =
            code_call(|n| (n > 0).then_some(WeChatError::InvalidCode(40163))).await;
        assert_eq!((result, ours), (Err(WeChatError::InvalidCode(40163)), true));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_after_a_transport_error_is_ours() {
        let (result, ours) = code_call(|n| {
            Some(match n {
                0 => WeChatError::Transport("reset".into()),
                _ => WeChatError::InvalidCode(40163),
            })
        })
        .await;
        assert_eq!((result, ours), (Err(WeChatError::InvalidCode(40163)), true));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_after_answered_attempts_is_the_clients() {
        let (result, ours) = code_call(|n| {
            Some(match n {
                0 => WeChatError::Busy,
                _ => WeChatError::InvalidCode(40163),
            })
        })
        .await;
        assert_eq!(
            (result, ours),
            (Err(WeChatError::InvalidCode(40163)), false)
        );
        let (_, ours) = code_call(|_| Some(WeChatError::InvalidCode(40163))).await;
        assert!(!ours);
    }
}
