//! A session as a route or the authorizer decides on it: live or refused,
//! and an outage kept apart from a refusal.

use tracing::{error, warn};

use crate::domain::session::{Caller, Session};
use crate::domain::time::epoch_seconds;
use crate::domain::token::TokenKey;
use crate::ports::errors::{StoreError, Upstream, UpstreamError};
use crate::ports::sessions::SessionStore;
use crate::runtime::deadline::Deadline;

/// The session behind `token` if it is live: read consistently, expiry decided
/// here (the table deletes lazily), logged-out and revoked sessions are gone.
/// `Ok(None)` is a refusal; `Err` means the table could not tell in time.
pub async fn live_session(
    store: &impl SessionStore,
    key: &TokenKey,
    deadline: Deadline,
) -> Result<Option<Session>, UpstreamError> {
    let read = deadline.run(store.get(key)).await;
    Ok(refused_unless_read(read)?.filter(|session| session.is_live(epoch_seconds())))
}

/// Who holds `token`, if its session is live, by the same rules as
/// `live_session`, from a read that leaves the session_key in the table: what
/// the authorizer needs, and all its IAM policy lets it read.
pub async fn live_caller(
    store: &impl SessionStore,
    key: &TokenKey,
    deadline: Deadline,
) -> Result<Option<Caller>, UpstreamError> {
    let read = deadline.run(store.caller(key)).await;
    Ok(refused_unless_read(read)?.filter(|caller| epoch_seconds() < caller.expires_at))
}

/// A read's outcome as a decision: what was read, `None` for an unreadable
/// item (refused, not an outage), `Err` when the table did not answer in time.
fn refused_unless_read<T>(
    read: Option<Result<Option<T>, StoreError>>,
) -> Result<Option<T>, UpstreamError> {
    match read {
        Some(Ok(found)) => Ok(found),
        Some(Err(StoreError::Malformed(reason))) => {
            error!(%reason, "session item unreadable; treating it as unknown");
            Ok(None)
        }
        Some(Err(err)) => {
            warn!(error = %err, "session read failed");
            Err(UpstreamError::Unavailable(Upstream::SessionTable))
        }
        None => {
            warn!("session read ran out of time");
            Err(UpstreamError::Unavailable(Upstream::SessionTable))
        }
    }
}
