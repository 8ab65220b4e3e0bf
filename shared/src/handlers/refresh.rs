//! `POST /refresh`: a new session for the refresh token's user, without
//! WeChat, and the token rotated.

use tracing::{info, warn};

use super::login::{Login, LoginBody, LoginFunctionStore};
use crate::domain::account::UserId;
use crate::domain::login_log::{LogEntry, LogEvent};
use crate::domain::redact::mask_openid;
use crate::domain::refresh::{MAX_REFRESH_CHARS, MIN_REFRESH_CHARS, RefreshToken};
use crate::domain::time::epoch_millis;
use crate::edge::body::{JsonBody, invalid};
use crate::edge::error::ApiError;
use crate::edge::request::{ApiRequest, ApiResponse};
use crate::ports::errors::Upstream;
use crate::ports::keys::SigningKeySource;
use crate::ports::secrets::SecretSource;
use crate::ports::sessions::RefreshOutcome;
use crate::ports::wechat::WeChatApi;
use crate::runtime::metrics::{self, Metric};
use crate::services::login::READ_BACK_BUDGET;
use crate::services::refresh::{RefreshPlan, store_refresh};
use crate::wechat::server_api::WeChatServerApi;

impl<S: LoginFunctionStore, W: WeChatApi, K: SecretSource, J: SigningKeySource, A: WeChatServerApi>
    Login<S, W, K, J, A>
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
        // The store fills in the user, and the app of a family that names
        // one; the placeholder never reaches the log.
        let log = LogEntry::new(
            UserId::generate().map_err(random_failed)?,
            LogEvent::Refresh,
            "ok",
            epoch_millis(),
            settings.log_retention_days,
        )
        .map_err(random_failed)?
        .with_appid(Some(settings.apps.default_app().id.as_str()))
        .with_origin(&request.origin);
        let next = RefreshToken::issue(&family).map_err(random_failed)?;
        let (presented_key, next_key) = (presented.key(), next.key());
        let plan = RefreshPlan {
            presented: &presented_key,
            family: &family,
            next: &next_key,
            session_ttl_seconds: settings.session_ttl_seconds,
            refresh_ttl_seconds: self.refresh.ttl_seconds,
            grace_seconds: self.refresh.grace_seconds,
            log: &log,
            jwt_mode: self.jwt.is_some(),
        };
        let (stored, ()) = tokio::join!(
            store_refresh(&self.store, &self.tokens, &plan, request.deadline),
            self.reload_signing_keys_if_due(request.deadline.before(READ_BACK_BUDGET))
        );
        let (token, outcome) = stored?;
        match outcome {
            RefreshOutcome::Refreshed(mut session) => {
                // A family of an app no longer listed ends with its app.
                let Some(app) = settings.apps.of_stored(session.appid.as_ref()) else {
                    warn!("a refresh token of an app no longer in WECHAT_APPS was refused");
                    return Err(ApiError::InvalidRefreshToken);
                };
                session.appid = Some(app.id.clone());
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
                        appid: &app.id,
                        openid: &session.openid,
                        unionid: session.unionid.as_deref(),
                    },
                ))
            }
            RefreshOutcome::Invalid => Err(ApiError::InvalidRefreshToken),
            RefreshOutcome::Reused { .. } => {
                warn!("a spent refresh token was presented after its grace; its family is revoked");
                metrics::count(Metric::RefreshReuse, &[]);
                Err(ApiError::InvalidRefreshToken)
            }
            RefreshOutcome::Disabled { .. } => Err(ApiError::AccountDisabled),
        }
    }
}
