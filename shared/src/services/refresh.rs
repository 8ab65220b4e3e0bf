//! A refresh, without HTTP: the family's token spent and rotated under a
//! fresh session key, collisions redrawn, and a read-back when the write's
//! answer is lost (a client that retries later must not be taken for a
//! thief).

use tracing::{info, warn};

use crate::domain::login_log::LogEntry;
use crate::domain::refresh::{RefreshFamily, RefreshKey};
use crate::domain::time::epoch_seconds;
use crate::domain::token::{SessionToken, TokenKey};
use crate::ports::errors::{StoreError, Upstream, UpstreamError};
use crate::ports::sessions::{RefreshOutcome, RefreshStore, RefreshWrite};
use crate::runtime::deadline::Deadline;
use crate::runtime::metrics::{self, Metric};
use crate::services::login::{
    READ_BACK_BUDGET, TOKEN_ATTEMPTS, TokenSource, draw_token, session_key_of,
};

/// What one refresh presents and asks for.
pub struct RefreshPlan<'a> {
    pub presented: &'a RefreshKey,
    pub family: &'a RefreshFamily,
    pub next: &'a RefreshKey,
    pub session_ttl_seconds: i64,
    pub refresh_ttl_seconds: i64,
    pub grace_seconds: i64,
    pub log: &'a LogEntry,
    pub jwt_mode: bool,
}

/// Spends the presented token for a session under a fresh token: the token
/// and what the store made of it.
pub async fn store_refresh(
    store: &impl RefreshStore,
    tokens: &TokenSource,
    plan: &RefreshPlan<'_>,
    deadline: Deadline,
) -> Result<(SessionToken, RefreshOutcome), UpstreamError> {
    for _ in 0..TOKEN_ATTEMPTS {
        let token = draw_token(tokens)?;
        let key = session_key_of(&token, plan.jwt_mode);
        let now = epoch_seconds();
        let write = RefreshWrite {
            presented: plan.presented,
            family: plan.family,
            next: plan.next,
            session_key: &key,
            now,
            session_expires_at: now + plan.session_ttl_seconds,
            refresh_expires_at: now + plan.refresh_ttl_seconds,
            grace_seconds: plan.grace_seconds,
            log: Some(plan.log),
        };
        // The end of the budget belongs to the read-back, as at login.
        let outcome = match deadline
            .before(READ_BACK_BUDGET)
            .run(store.refresh(&write))
            .await
        {
            Some(Ok(outcome)) => outcome,
            Some(Err(StoreError::AlreadyExists)) => {
                warn!("session key collided with an existing item; drawing another");
                continue;
            }
            Some(Err(err @ (StoreError::Refused(_) | StoreError::Malformed(_)))) => {
                warn!(error = %err, "refresh failed");
                return Err(UpstreamError::Unavailable(Upstream::SessionTable));
            }
            Some(Err(err)) => {
                warn!(error = %err, "refresh write failed; reading back whether it committed");
                refreshed_anyway(store, &key, deadline).await?
            }
            None => {
                warn!("refresh ran out of time; reading back whether it committed");
                refreshed_anyway(store, &key, deadline).await?
            }
        };
        return Ok((token, outcome));
    }
    tracing::error!("session key collided {TOKEN_ATTEMPTS} times in a row");
    Err(UpstreamError::Unavailable(Upstream::SessionTable))
}

/// After a refresh whose outcome is unknown: the refresh, if its session
/// is in the table (read consistently; its key is this attempt's own, so
/// an item there is this write's), else 503. The presented token is then
/// spent and the new one live.
async fn refreshed_anyway(
    store: &impl RefreshStore,
    key: &TokenKey,
    deadline: Deadline,
) -> Result<RefreshOutcome, UpstreamError> {
    let unavailable = UpstreamError::Unavailable(Upstream::SessionTable);
    match deadline.run(store.get(key)).await {
        Some(Ok(Some(session))) => {
            info!("the refresh committed though its answer was lost");
            metrics::count(Metric::SessionWriteConfirmed, &[]);
            Ok(RefreshOutcome::Refreshed(session))
        }
        Some(Ok(None)) => Err(unavailable),
        Some(Err(err)) => {
            warn!(error = %err, "reading back the refreshed session failed");
            Err(unavailable)
        }
        None => {
            warn!("reading back the refreshed session ran out of time");
            Err(unavailable)
        }
    }
}
