//! `GET /account` and `DELETE /account`: the caller's own account.

use tracing::{info, warn};

use super::check_session::{CheckSession, CheckSessionStore};
use crate::domain::login_log::LogEvent;
use crate::domain::redact::mask_openid;
use crate::domain::session::Session;
use crate::edge::authenticate::authenticate;
use crate::edge::error::ApiError;
use crate::edge::request::{ApiRequest, ApiResponse};
use crate::ports::errors::Upstream;
use crate::runtime::metrics::{self, Metric};
use crate::wechat::WeChatServerApi;

const UNKNOWN_ACCOUNT: &str =
    "The account behind this session no longer exists: call wx.login and POST /login again.";

impl<S: CheckSessionStore, A: WeChatServerApi> CheckSession<S, A> {
    /// `GET /account` and `DELETE /account`, for the session's own account.
    pub(super) async fn account(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        let (_, session) = authenticate(&self.store, &self.tokens, &request).await?;
        if request.method == "DELETE" {
            return self.delete_account(&session, &request).await;
        }
        let account = match request
            .deadline
            .run(self.store.account(&session.user_id))
            .await
        {
            Some(Ok(account)) => account.filter(|account| account.user_id == session.user_id),
            Some(Err(err)) => {
                warn!(error = %err, "account read failed");
                return Err(ApiError::Unavailable(Upstream::SessionTable));
            }
            None => return Err(ApiError::Unavailable(Upstream::SessionTable)),
        };
        // A session outliving its account is revoked with it; a race with a
        // deletion is the only way here.
        let account = account.ok_or(ApiError::Unauthorized(UNKNOWN_ACCOUNT))?;
        let default_app = self.tokens.apps().map(|apps| &apps.default_app().id);
        Ok(ApiResponse::json(
            200,
            &account.view(&session.openid, default_app),
        ))
    }

    /// `DELETE /account`: the account and everything kept for it, at once.
    async fn delete_account(
        &self,
        session: &Session,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let entry = self.entry(session, LogEvent::AccountDeleted, request);
        let deletion = self.store.delete_account(&session.user_id, entry.as_ref());
        match request.deadline.run(deletion).await {
            Some(Ok(true)) => {
                info!(openid = %mask_openid(&session.openid), "account deleted");
                metrics::count(Metric::AccountsDeleted, &[]);
                Ok(ApiResponse::no_content())
            }
            Some(Ok(false)) => Err(ApiError::Unauthorized(UNKNOWN_ACCOUNT)),
            Some(Err(err)) => {
                warn!(error = %err, "account deletion failed");
                Err(ApiError::Unavailable(Upstream::SessionTable))
            }
            None => {
                warn!("account deletion ran out of time");
                Err(ApiError::Unavailable(Upstream::SessionTable))
            }
        }
    }
}
