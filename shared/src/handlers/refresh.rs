//! `POST /refresh`: a new session for the refresh token's user, without
//! WeChat, and the token rotated.

use tracing::{info, warn};

use super::login::{Login, LoginBody, READ_BACK_BUDGET, session_key_of};
use crate::api::{ApiRequest, ApiResponse, JsonBody, invalid};
use crate::error::{ApiError, Upstream};
use crate::jwt::{PublicKeyStore, SigningKeySource};
use crate::login_log::{LogEntry, LogEvent, epoch_millis};
use crate::metrics::{self, Metric};
use crate::redact::mask_openid;
use crate::refresh::{
    MAX_REFRESH_CHARS, MIN_REFRESH_CHARS, RefreshOutcome, RefreshToken, RefreshWrite,
};
use crate::secret::SecretSource;
use crate::session::{SessionStore, StoreError, epoch_seconds};
use crate::wechat::WeChatApi;

/// A fresh session key colliding is a 2^-128 event.
const TOKEN_ATTEMPTS: u32 = 3;

impl<S: SessionStore + PublicKeyStore, W: WeChatApi, K: SecretSource, J: SigningKeySource>
    Login<S, W, K, J>
{
    pub(super) async fn refresh(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        let body = JsonBody::from_request(&request)?;
        let presented = RefreshToken::parse(body.required_str("refreshToken")?).ok_or_else(|| {
            invalid(format!(
                "refreshToken must be {MIN_REFRESH_CHARS} to {MAX_REFRESH_CHARS} base64url characters, as POST /login returned it."
            ))
        })?;
        if !self.refresh.enabled() {
            return Err(ApiError::InvalidRefreshToken);
        }
        // Every token we issue names its family; one that does not is not ours.
        let family = presented
            .family_hint()
            .ok_or(ApiError::InvalidRefreshToken)?;
        let random_failed = |err: getrandom::Error| {
            tracing::error!(error = %err, "the OS random source failed");
            ApiError::Unavailable(Upstream::SessionTable)
        };
        let settings = self.settings();
        // The store fills in the user; the placeholder never reaches the log.
        let log = LogEntry::new(
            crate::account::UserId::generate().map_err(random_failed)?,
            LogEvent::Refresh,
            "ok",
            epoch_millis(),
            settings.log_retention_days,
        )
        .map_err(random_failed)?
        .with_appid(Some(&settings.appid))
        .with_origin(&request.origin);
        let next = RefreshToken::issue(&family).map_err(random_failed)?;
        let presented_key = presented.key();
        let next_key = next.key();
        for _ in 0..TOKEN_ATTEMPTS {
            let token = self.draw_token()?;
            let key = session_key_of(&token, self.jwt.is_some());
            let now = epoch_seconds();
            let write = RefreshWrite {
                presented: &presented_key,
                family: &family,
                next: &next_key,
                session_key: &key,
                now,
                session_expires_at: now + settings.session_ttl_seconds,
                refresh_expires_at: now + self.refresh.ttl_seconds,
                grace_seconds: self.refresh.grace_seconds,
                log: Some(&log),
            };
            // The end of the budget belongs to the read-back, as at login.
            let write_deadline = request.deadline.before(READ_BACK_BUDGET);
            let (outcome, ()) = tokio::join!(
                write_deadline.run(self.store.refresh(&write)),
                self.reload_signing_keys_if_due(write_deadline)
            );
            let outcome = match outcome {
                Some(Ok(outcome)) => outcome,
                Some(Err(StoreError::AlreadyExists)) => {
                    warn!("session key collided with an existing item; drawing another");
                    continue;
                }
                Some(Err(err @ (StoreError::Refused(_) | StoreError::Malformed(_)))) => {
                    warn!(error = %err, "refresh failed");
                    return Err(ApiError::Unavailable(Upstream::SessionTable));
                }
                Some(Err(err)) => {
                    warn!(error = %err, "refresh write failed; reading back whether it committed");
                    self.refreshed_anyway(&key, request.deadline).await?
                }
                None => {
                    warn!("refresh ran out of time; reading back whether it committed");
                    self.refreshed_anyway(&key, request.deadline).await?
                }
            };
            return match outcome {
                RefreshOutcome::Refreshed(session) => {
                    metrics::count(Metric::Refreshes, &[]);
                    let handed_out = self.hand_out(&token, &session)?;
                    info!(openid = %mask_openid(&session.openid), "refreshed");
                    Ok(ApiResponse::json(
                        200,
                        &LoginBody {
                            token: &handed_out,
                            expires_in: settings.session_ttl_seconds,
                            refresh_token: Some(next.expose()),
                            refresh_expires_in: Some(self.refresh.ttl_seconds),
                            user_id: &session.user_id,
                            new_user: false,
                            openid: &session.openid,
                            unionid: session.unionid.as_deref(),
                        },
                    ))
                }
                RefreshOutcome::Invalid => Err(ApiError::InvalidRefreshToken),
                RefreshOutcome::Reused { .. } => {
                    warn!(
                        "a spent refresh token was presented after its grace; its family is revoked"
                    );
                    metrics::count(Metric::RefreshReuse, &[]);
                    Err(ApiError::InvalidRefreshToken)
                }
                RefreshOutcome::Disabled { .. } => Err(ApiError::AccountDisabled),
            };
        }
        tracing::error!("session key collided {TOKEN_ATTEMPTS} times in a row");
        Err(ApiError::Unavailable(Upstream::SessionTable))
    }

    /// After a refresh whose outcome is unknown: the refresh, if its session
    /// is in the table (read consistently; its key is this attempt's own, so
    /// an item there is this write's), else 503. The presented token is then
    /// spent and the new one live: answering 200 keeps a client that retries
    /// later from being taken for a thief.
    async fn refreshed_anyway(
        &self,
        key: &crate::token::TokenKey,
        deadline: crate::deadline::Deadline,
    ) -> Result<RefreshOutcome, ApiError> {
        match deadline.run(self.store.get(key)).await {
            Some(Ok(Some(session))) => {
                info!("the refresh committed though its answer was lost");
                metrics::count(Metric::SessionWriteConfirmed, &[]);
                Ok(RefreshOutcome::Refreshed(session))
            }
            Some(Ok(None)) => Err(ApiError::Unavailable(Upstream::SessionTable)),
            Some(Err(err)) => {
                warn!(error = %err, "reading back the refreshed session failed");
                Err(ApiError::Unavailable(Upstream::SessionTable))
            }
            None => {
                warn!("reading back the refreshed session ran out of time");
                Err(ApiError::Unavailable(Upstream::SessionTable))
            }
        }
    }
}
