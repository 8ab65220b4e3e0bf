//! WeChat's access token, shared by every container through the session table.
//!
//! getStableAccessToken in normal mode hands every caller the same token until
//! shortly before it expires, so containers need not coordinate to stay valid.
//! A forced refresh is different: it invalidates the token for everyone, and
//! WeChat allows 20 a day (40001 loops are the classic way to burn them). So
//! after WeChat refuses the token (40001, 40014, 42001) a container first looks
//! in the table, then asks WeChat in normal mode (another container or system
//! may already have replaced the token), and forces a refresh only when WeChat
//! hands back the very token it refused: at most once per 30 seconds and 10
//! times per UTC day across all containers (a conditional counter in the
//! table), leaving half the day's quota to people and other systems.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tracing::{info, warn};

use crate::domain::app::AppId;
use crate::domain::redact::AccessToken;
use crate::domain::time::epoch_seconds;
use crate::domain::wechat::{FetchedToken, WeChatError};
use crate::ports::errors::{Upstream, UpstreamError};
use crate::ports::secrets::SecretSource;
use crate::ports::token_cache::{CachedToken, TokenCache};
use crate::ports::wechat::WeChatApi;
use crate::runtime::deadline::Deadline;
use crate::runtime::metrics;
use crate::runtime::metrics::Metric;
use crate::wechat::appsecret::with_appsecret;
use crate::wechat::{RetryPolicy, with_retry};

/// At most one forced refresh per this many seconds, across all containers.
pub const FORCED_REFRESH_INTERVAL_SECONDS: i64 = 30;
/// At most this many forced refreshes per UTC day, across all containers:
/// half of WeChat's 20.
pub const FORCED_REFRESHES_PER_DAY: i64 = 10;
/// How long one container may fetch while the others wait for its token.
const FETCH_LEASE_SECONDS: i64 = 3;
/// How a waiting container polls the table for another container's token.
const WAIT_STEP: Duration = Duration::from_millis(100);
const WAIT_ROUNDS: u32 = 10;
/// What time it is, in epoch seconds: the system clock, or a test's.
pub type Clock = std::sync::Arc<dyn Fn() -> i64 + Send + Sync>;

/// The access tokens of the apps (one per mini-program): in process, in the
/// table, from WeChat.
pub struct AccessTokens<C, W, K> {
    cache: C,
    wechat: W,
    secrets: K,
    retry: RetryPolicy,
    local: Mutex<HashMap<AppId, CachedToken>>,
    clock: Clock,
}

impl<C: TokenCache, W: WeChatApi, K: SecretSource> AccessTokens<C, W, K> {
    pub fn new(cache: C, wechat: W, secrets: K, retry: RetryPolicy) -> Self {
        Self {
            cache,
            wechat,
            secrets,
            retry,
            local: Mutex::new(HashMap::new()),
            clock: std::sync::Arc::new(epoch_seconds),
        }
    }

    /// Replaces the clock that expiry, the fetch claim and the forced-refresh
    /// limits read: tests move time instead of waiting for it.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The WeChat client the calls go through.
    pub fn wechat(&self) -> &W {
        &self.wechat
    }

    /// Runs a WeChat call that needs `appid`'s access token, with the usual
    /// retries. If WeChat refuses the token, the call runs once more with a
    /// replacement.
    pub async fn call<T, F, Fut>(
        &self,
        appid: &AppId,
        deadline: Deadline,
        call: F,
    ) -> Result<T, UpstreamError>
    where
        F: FnMut(AccessToken, Duration) -> Fut,
        Fut: Future<Output = Result<T, WeChatError>>,
    {
        self.call_with(appid, self.retry, deadline, call).await
    }

    /// `call`, tried as `retry` says (a call with a budget of its own).
    pub async fn call_with<T, F, Fut>(
        &self,
        appid: &AppId,
        retry: RetryPolicy,
        deadline: Deadline,
        mut call: F,
    ) -> Result<T, UpstreamError>
    where
        F: FnMut(AccessToken, Duration) -> Fut,
        Fut: Future<Output = Result<T, WeChatError>>,
    {
        let token = self.current(appid, deadline).await?;
        match with_retry(retry, deadline, |timeout| call(token.clone(), timeout)).await {
            Err(WeChatError::TokenRejected(errcode)) => {
                warn!(errcode, "WeChat refused the access token; replacing it");
                let fresh = self.replace_rejected(appid, &token, deadline).await?;
                with_retry(retry, deadline, |timeout| call(fresh.clone(), timeout))
                    .await
                    .map_err(UpstreamError::WeChat)
            }
            result => result.map_err(UpstreamError::WeChat),
        }
    }

    /// The token to use now: this process's, else the table's, else WeChat's.
    async fn current(
        &self,
        appid: &AppId,
        deadline: Deadline,
    ) -> Result<AccessToken, UpstreamError> {
        if let Some(token) = self.local_live(appid, self.now()) {
            return Ok(token);
        }
        if let Some(token) = self.shared_token(appid, None, deadline).await? {
            return Ok(token);
        }
        // Nobody holds a live token: one container fetches, the rest wait for it.
        if self.claim_fetch(appid, deadline).await? {
            let fetched = self.fetch(appid, false, deadline).await?;
            return Ok(self.share(appid, fetched, deadline).await);
        }
        if let Some(token) = self.wait_for_shared(appid, None, deadline).await? {
            return Ok(token);
        }
        let fetched = self.fetch(appid, false, deadline).await?;
        Ok(self.share(appid, fetched, deadline).await)
    }

    /// WeChat refused `rejected`: find or make its replacement. The table
    /// first, then WeChat in normal mode, and a forced refresh only when WeChat
    /// hands back the very token it refused, within the shared limits.
    async fn replace_rejected(
        &self,
        appid: &AppId,
        rejected: &AccessToken,
        deadline: Deadline,
    ) -> Result<AccessToken, UpstreamError> {
        self.forget(appid, rejected);
        if let Some(token) = self.shared_token(appid, Some(rejected), deadline).await? {
            return Ok(token);
        }
        let fetched = self.fetch(appid, false, deadline).await?;
        if &fetched.token != rejected {
            return Ok(self.share(appid, fetched, deadline).await);
        }
        if self.claim_forced_refresh(appid, deadline).await? {
            info!("WeChat hands back the access token it refused; forcing a refresh");
            let fetched = self.fetch(appid, true, deadline).await?;
            return Ok(self.share(appid, fetched, deadline).await);
        }
        metrics::count(Metric::ForcedRefreshRefused, &[]);
        info!(
            "a forced token refresh ran within 30 s or the day's are spent; waiting for another container's token"
        );
        if let Some(token) = self
            .wait_for_shared(appid, Some(rejected), deadline)
            .await?
        {
            return Ok(token);
        }
        warn!(
            "WeChat still hands out the refused access token and no forced refresh is allowed now"
        );
        Err(UpstreamError::Unavailable(Upstream::WeChat))
    }

    fn local_live(&self, appid: &AppId, now: i64) -> Option<AccessToken> {
        self.lock()
            .get(appid)
            .filter(|cached| cached.is_live(now))
            .map(|cached| cached.token.clone())
    }

    fn remember(&self, appid: &AppId, cached: &CachedToken) {
        self.lock().insert(appid.clone(), cached.clone());
    }

    fn forget(&self, appid: &AppId, rejected: &AccessToken) {
        let mut local = self.lock();
        if local
            .get(appid)
            .is_some_and(|cached| &cached.token == rejected)
        {
            local.remove(appid);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AppId, CachedToken>> {
        // One assignment per write: a poisoned value is still whole.
        self.local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The table's live token, unless it is `other_than`. A table that cannot be
    /// read is skipped: WeChat can still be asked.
    async fn shared_token(
        &self,
        appid: &AppId,
        other_than: Option<&AccessToken>,
        deadline: Deadline,
    ) -> Result<Option<AccessToken>, UpstreamError> {
        match deadline.run(self.cache.load_token(appid.as_str())).await {
            Some(Ok(Some(cached)))
                if cached.is_live(self.now()) && Some(&cached.token) != other_than =>
            {
                self.remember(appid, &cached);
                Ok(Some(cached.token))
            }
            Some(Ok(_)) => Ok(None),
            Some(Err(err)) => {
                warn!(error = %err, "access token read failed; asking WeChat");
                Ok(None)
            }
            None => Err(UpstreamError::Unavailable(Upstream::SessionTable)),
        }
    }

    /// Polls the table while another container fetches, for about a second.
    async fn wait_for_shared(
        &self,
        appid: &AppId,
        other_than: Option<&AccessToken>,
        deadline: Deadline,
    ) -> Result<Option<AccessToken>, UpstreamError> {
        for _ in 0..WAIT_ROUNDS {
            if deadline.remaining() < WAIT_STEP * 4 {
                break;
            }
            tokio::time::sleep(WAIT_STEP).await;
            if let Some(token) = self.shared_token(appid, other_than, deadline).await? {
                return Ok(Some(token));
            }
        }
        Ok(None)
    }

    /// The right to fetch a missing token while the others wait. `Ok(false)`
    /// when another container holds it; a claim that cannot be written is taken
    /// (a normal-mode fetch costs nothing).
    async fn claim_fetch(&self, appid: &AppId, deadline: Deadline) -> Result<bool, UpstreamError> {
        let attempt = self
            .cache
            .try_claim_fetch(appid.as_str(), self.now(), FETCH_LEASE_SECONDS);
        claimed(attempt, true, "token fetch claim", deadline).await
    }

    /// The right to force a refresh: none within 30 s of the last, at most 10 a
    /// UTC day, across all containers. One that cannot be written is not taken:
    /// not forcing is the safe side.
    async fn claim_forced_refresh(
        &self,
        appid: &AppId,
        deadline: Deadline,
    ) -> Result<bool, UpstreamError> {
        let attempt = self.cache.try_claim_forced_refresh(
            appid.as_str(),
            self.now(),
            FORCED_REFRESH_INTERVAL_SECONDS,
            FORCED_REFRESHES_PER_DAY,
        );
        claimed(attempt, false, "forced refresh claim", deadline).await
    }

    /// Asks WeChat for the token. A forced refresh is attempted once only: a
    /// retry after a lost answer could spend a second one of the day's 20.
    async fn fetch(
        &self,
        appid: &AppId,
        force: bool,
        deadline: Deadline,
    ) -> Result<CachedToken, UpstreamError> {
        let mode = if force { "forced" } else { "normal" };
        metrics::count(Metric::AccessTokenFetches, &[("Mode", mode)]);
        let fetched = with_appsecret(&self.secrets, appid, deadline, |secret| async move {
            self.stable_token(appid, &secret, force, deadline).await
        })
        .await?;
        Ok(CachedToken::from_fetched(fetched, self.now()))
    }

    /// Shares a fetched token and uses whichever token the table kept: a token
    /// that lives longer (another container's forced refresh) wins over ours.
    async fn share(&self, appid: &AppId, fetched: CachedToken, deadline: Deadline) -> AccessToken {
        let kept = match deadline
            .run(self.cache.save_token(appid.as_str(), &fetched))
            .await
        {
            Some(Ok(kept)) => kept,
            Some(Err(err)) => {
                warn!(error = %err, "could not share the access token");
                fetched
            }
            None => {
                warn!("sharing the access token ran out of time");
                fetched
            }
        };
        self.remember(appid, &kept);
        kept.token
    }

    async fn stable_token(
        &self,
        appid: &AppId,
        secret: &crate::domain::redact::AppSecret,
        force: bool,
        deadline: Deadline,
    ) -> Result<FetchedToken, WeChatError> {
        let policy = if force {
            RetryPolicy {
                max_attempts: 1,
                ..self.retry
            }
        } else {
            self.retry
        };
        with_retry(policy, deadline, |timeout| {
            self.wechat
                .stable_token(appid.as_str(), secret, force, timeout)
        })
        .await
    }
}

/// A claim's outcome within the deadline; `if_unwritable` when the table
/// refuses the write for another reason than the claim being held.
async fn claimed(
    attempt: impl Future<Output = Result<bool, crate::ports::errors::StoreError>>,
    if_unwritable: bool,
    what: &'static str,
    deadline: Deadline,
) -> Result<bool, UpstreamError> {
    match deadline.run(attempt).await {
        Some(Ok(taken)) => Ok(taken),
        Some(Err(err)) => {
            warn!(error = %err, taken = if_unwritable, "{what} could not be written");
            Ok(if_unwritable)
        }
        None => Err(UpstreamError::Unavailable(Upstream::SessionTable)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::redact::AppSecret;
    use crate::domain::wechat::PhoneInfo;
    use crate::ports::memory::MemoryTokenCache;
    use crate::ports::secrets::StaticSecrets;

    use crate::wechat::in_process::InProcessWeChat;
    use crate::wechat::server_api::WeChatServerApi;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    type Tokens = AccessTokens<Arc<MemoryTokenCache>, InProcessWeChat, StaticSecrets>;

    fn app() -> AppId {
        AppId::parse("wx1111111111111111").unwrap()
    }

    fn container(cache: &Arc<MemoryTokenCache>, wechat: &InProcessWeChat) -> Tokens {
        AccessTokens::new(
            cache.clone(),
            wechat.clone(),
            StaticSecrets::single(app(), AppSecret::new("s3cret")),
            RetryPolicy::default(),
        )
    }

    fn soon() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    async fn phone(tokens: &Tokens) -> Result<PhoneInfo, UpstreamError> {
        tokens
            .phone_number(&app(), "13800138000", "o1", soon())
            .await
    }

    #[test]
    fn tokens_are_renewed_before_wechat_expires_them() {
        let cached = |expires_in| {
            CachedToken::from_fetched(
                FetchedToken {
                    token: AccessToken::new("t"),
                    expires_in,
                },
                1000,
            )
            .expires_at
        };
        assert_eq!(cached(7200), 1000 + 7200 - 300);
        assert_eq!(cached(200), 1000 + 100);
    }

    /// The first attempt spends the phone code but its answer is lost; the
    /// retry gets 40029. The client is told the code is gone (401 invalid_code
    /// at the edge); `retry::tests` show how it is told apart as our retry's
    /// doing, `lambda_e2e` that the function logs and counts it.
    #[tokio::test(start_paused = true)]
    async fn a_phone_code_spent_by_our_lost_attempt_is_gone() {
        let (cache, wechat) = (Arc::default(), InProcessWeChat::default());
        let tokens = container(&cache, &wechat);
        wechat.stall_next.store(1, Ordering::SeqCst);
        let result = phone(&tokens).await;
        assert_eq!(
            result,
            Err(UpstreamError::WeChat(WeChatError::InvalidCode(40029)))
        );
        assert_eq!(wechat.phone_calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn one_fetch_serves_this_container_and_the_next() {
        let (cache, wechat) = (Arc::default(), InProcessWeChat::default());
        let first = container(&cache, &wechat);
        phone(&first).await.unwrap();
        phone(&first).await.unwrap();
        phone(&container(&cache, &wechat)).await.unwrap();
        assert_eq!(wechat.normal.load(Ordering::SeqCst), 1);
        assert_eq!(wechat.forced.load(Ordering::SeqCst), 0);
        assert_eq!(wechat.phone_calls.load(Ordering::SeqCst), 3);
        let seen = wechat.credentials_seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [("wx1111111111111111".to_owned(), "s3cret".to_owned())]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_shared_token_is_fetched_again() {
        let (cache, wechat) = (
            Arc::<MemoryTokenCache>::default(),
            InProcessWeChat::default(),
        );
        let stale = CachedToken {
            token: AccessToken::new("token-0"),
            expires_at: epoch_seconds() - 1,
        };
        cache
            .save_token("wx1111111111111111", &stale)
            .await
            .unwrap();
        phone(&container(&cache, &wechat)).await.unwrap();
        assert_eq!(wechat.normal.load(Ordering::SeqCst), 1);
        let shared = cache
            .load_token("wx1111111111111111")
            .await
            .unwrap()
            .unwrap();
        assert!(shared.is_live(epoch_seconds()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_token_is_forced_once_and_shared() {
        let (cache, wechat) = (Arc::default(), InProcessWeChat::default());
        let a = container(&cache, &wechat);
        let b = container(&cache, &wechat);
        phone(&a).await.unwrap();
        phone(&b).await.unwrap();
        wechat.revoked.store(true, Ordering::SeqCst);
        // a meets the refusal and forces a new token; b, holding the old one in
        // memory, meets it too and takes a's token from the table.
        phone(&a).await.unwrap();
        phone(&b).await.unwrap();
        assert_eq!(wechat.forced.load(Ordering::SeqCst), 1);
        assert_eq!(wechat.current_token(), "token-1");
    }

    #[tokio::test(start_paused = true)]
    async fn no_second_forced_refresh_within_30_seconds() {
        let (cache, wechat) = (Arc::default(), InProcessWeChat::default());
        let a = container(&cache, &wechat);
        phone(&a).await.unwrap();
        wechat.revoked.store(true, Ordering::SeqCst);
        phone(&a).await.unwrap();
        wechat.revoked.store(true, Ordering::SeqCst);
        assert_eq!(
            phone(&a).await,
            Err(UpstreamError::Unavailable(Upstream::WeChat))
        );
        assert_eq!(wechat.forced.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_replaced_elsewhere_is_used_without_forcing() {
        let (cache, wechat) = (Arc::default(), InProcessWeChat::default());
        let tokens = container(&cache, &wechat);
        phone(&tokens).await.unwrap();
        // Another system forced a refresh: our token is refused, WeChat's normal
        // mode already hands out the new one.
        wechat.generation.fetch_add(1, Ordering::SeqCst);
        phone(&tokens).await.unwrap();
        assert_eq!(wechat.forced.load(Ordering::SeqCst), 0);
        assert_eq!(wechat.normal.load(Ordering::SeqCst), 2);
        let shared = cache
            .load_token("wx1111111111111111")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(shared.token.expose(), "token-1");
    }

    /// A day's start, in epoch seconds: tests set the time, they never wait.
    const DAY: i64 = 20_000 * 86_400;

    #[tokio::test(start_paused = true)]
    async fn forced_refreshes_are_capped_per_30_seconds_and_per_utc_day() {
        let cache = MemoryTokenCache::new();
        let claim = |now| cache.try_claim_forced_refresh("wx1111111111111111", now, 30, 10);
        for i in 0..10 {
            assert!(claim(DAY + i * 31).await.unwrap(), "claim {i}");
            assert!(
                !claim(DAY + i * 31 + 29).await.unwrap(),
                "within 30 s of claim {i}"
            );
        }
        assert!(!claim(DAY + 10 * 31).await.unwrap(), "an 11th the same day");
        assert!(!claim(DAY + 86_399).await.unwrap());
        // The next UTC day has its own 10.
        assert!(claim(DAY + 86_400).await.unwrap());
        assert!(!claim(DAY + 86_400 + 29).await.unwrap());
        assert!(claim(DAY + 86_400 + 31).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn no_forced_refresh_once_the_days_are_spent() {
        let (cache, wechat) = (
            Arc::<MemoryTokenCache>::default(),
            InProcessWeChat::default(),
        );
        let now = Arc::new(std::sync::atomic::AtomicI64::new(DAY + 3_600));
        let clock = Arc::clone(&now);
        let tokens =
            container(&cache, &wechat).with_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
        phone(&tokens).await.unwrap();
        // Other containers spent today's forced refreshes, the last long ago.
        for i in 0..FORCED_REFRESHES_PER_DAY {
            let at = DAY + i * 60;
            assert!(
                cache
                    .try_claim_forced_refresh(
                        "wx1111111111111111",
                        at,
                        30,
                        FORCED_REFRESHES_PER_DAY
                    )
                    .await
                    .unwrap()
            );
        }
        wechat.revoked.store(true, Ordering::SeqCst);
        assert_eq!(
            phone(&tokens).await,
            Err(UpstreamError::Unavailable(Upstream::WeChat))
        );
        assert_eq!(wechat.forced.load(Ordering::SeqCst), 0);
        // A new UTC day: the refused token is replaced by one forced refresh.
        now.store(DAY + 86_400 + 60, Ordering::SeqCst);
        phone(&tokens).await.unwrap();
        assert_eq!(wechat.forced.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_longer_lived_shared_token_wins_the_write_and_is_used() {
        let cache = MemoryTokenCache::new();
        let longer = CachedToken {
            token: AccessToken::new("forced-elsewhere"),
            expires_at: epoch_seconds() + 7000,
        };
        cache
            .save_token("wx1111111111111111", &longer)
            .await
            .unwrap();
        let ours = CachedToken {
            token: AccessToken::new("slow-normal-fetch"),
            expires_at: epoch_seconds() + 100,
        };
        assert_eq!(
            cache.save_token("wx1111111111111111", &ours).await.unwrap(),
            longer
        );
        assert_eq!(
            cache.load_token("wx1111111111111111").await.unwrap(),
            Some(longer)
        );
    }
}
