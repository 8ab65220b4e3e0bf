//! The time an invocation has left, threaded through every outbound call.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// tokio's clock, not std's: a test that pauses time moves deadlines, timeouts
// and backoff sleeps together, so retry budgets are tested without waiting.
use tokio::time::Instant;

/// Every answer comes within this long of the request, even when Lambda allows more.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(8);
/// Time kept back to build and send the answer after the last outbound call.
const SAFETY_MARGIN: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    /// The deadline for a request that arrived now: 8 seconds, or the invocation's
    /// own deadline (epoch milliseconds, from the Lambda runtime) if that is sooner,
    /// less a margin to answer in. A deadline that is absent, or already past when
    /// the request arrives, is unknown: local emulators send a duration
    /// (`cargo lambda watch`: 600000) or 0, so the 8-second budget applies alone.
    pub fn for_request(invocation_deadline_epoch_ms: Option<u64>) -> Self {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let budget = match invocation_deadline_epoch_ms {
            Some(deadline_ms) if deadline_ms > now_ms => {
                ANSWER_WITHIN.min(Duration::from_millis(deadline_ms - now_ms))
            }
            _ => ANSWER_WITHIN,
        };
        Self::after(budget.saturating_sub(SAFETY_MARGIN))
    }

    /// This deadline moved `reserve` earlier: the budget of a step that must
    /// leave the steps after it time of their own. Never earlier than now.
    pub fn before(&self, reserve: Duration) -> Self {
        Self(self.0 - reserve.min(self.remaining()))
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Runs `future` until the deadline; `None` if time ran out first.
    pub async fn run<T>(&self, future: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.remaining(), future).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_deadline_shortens_the_budget() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let soon = Deadline::for_request(Some(now_ms + 1_000));
        assert!(soon.remaining() <= Duration::from_millis(750));
        let late = Deadline::for_request(Some(now_ms + 60_000));
        assert!(late.remaining() <= ANSWER_WITHIN);
        assert!(late.remaining() > Duration::from_secs(7));
        // Absent, past, or a duration where an epoch time belongs: unknown.
        for unknown in [None, Some(0), Some(600_000), Some(now_ms - 5_000)] {
            let deadline = Deadline::for_request(unknown);
            assert!(deadline.remaining() > Duration::from_secs(7), "{unknown:?}");
            assert!(deadline.remaining() <= ANSWER_WITHIN, "{unknown:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn run_stops_at_the_deadline() {
        let started = Instant::now();
        let deadline = Deadline::after(Duration::from_secs(2));
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(deadline.run(slow).await, None);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(deadline.remaining(), Duration::ZERO);
        // A future that is ready at once still completes at a spent deadline:
        // tokio polls it before the timer.
        assert_eq!(deadline.run(async { 1 }).await, Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_leaves_time_for_what_follows() {
        let deadline = Deadline::after(Duration::from_secs(8));
        let first_step = deadline.before(Duration::from_secs(2));
        assert_eq!(first_step.remaining(), Duration::from_secs(6));
        assert_eq!(deadline.remaining(), Duration::from_secs(8));
        // Reserving more than is left leaves nothing, not a deadline in the past.
        assert_eq!(
            first_step.before(Duration::from_secs(60)).remaining(),
            Duration::ZERO
        );
        tokio::time::advance(Duration::from_secs(7)).await;
        assert_eq!(first_step.remaining(), Duration::ZERO);
        assert_eq!(deadline.remaining(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_follows_the_clock() {
        let deadline = Deadline::after(Duration::from_secs(8));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(deadline.remaining(), Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(deadline.remaining(), Duration::ZERO);
    }
}
