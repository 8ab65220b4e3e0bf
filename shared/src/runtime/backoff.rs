//! The one backoff for every retry loop: exponential, with full jitter, so
//! that many containers retrying at once spread apart instead of colliding.

use std::time::Duration;

/// The pause before retry number `retry` (0 for the first): uniform in
/// [0, min(base × 2^retry, cap)].
pub fn full_jitter(base: Duration, retry: u32, cap: Duration) -> Duration {
    let ceiling = base.saturating_mul(1 << retry.min(16)).min(cap);
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

    #[test]
    fn stays_within_the_ceiling_and_the_cap() {
        let base = Duration::from_millis(10);
        for retry in 0..40 {
            let pause = full_jitter(base, retry, Duration::from_millis(200));
            assert!(
                pause <= base.saturating_mul(1 << retry.min(16)),
                "{retry}: {pause:?}"
            );
            assert!(pause <= Duration::from_millis(200), "{retry}: {pause:?}");
        }
    }
}
