//! The time an invocation has left, threaded through every outbound call.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// less a margin to answer in.
    pub fn for_request(invocation_deadline_epoch_ms: Option<u64>) -> Self {
        let mut budget = ANSWER_WITHIN;
        if let Some(deadline_ms) = invocation_deadline_epoch_ms {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            budget = budget.min(Duration::from_millis(deadline_ms.saturating_sub(now_ms)));
        }
        Self::after(budget.saturating_sub(SAFETY_MARGIN))
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
        let past = Deadline::for_request(Some(now_ms.saturating_sub(5_000)));
        assert_eq!(past.remaining(), Duration::ZERO);
    }

    #[tokio::test]
    async fn run_stops_at_the_deadline() {
        let deadline = Deadline::after(Duration::from_millis(20));
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(deadline.run(slow).await, None);
        // A future that is ready at once still completes at a spent deadline:
        // tokio polls it before the timer.
        assert_eq!(deadline.run(async { 1 }).await, Some(1));
    }
}
