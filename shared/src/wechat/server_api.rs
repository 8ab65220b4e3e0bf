//! The WeChat calls a route makes on a user's behalf with the app's access
//! token, and what a function without one answers.

use std::future::Future;

use crate::domain::app::AppId;
use crate::domain::crypto::checksession_signature;
use crate::domain::redact::SessionKey;
use crate::domain::wechat::{PhoneInfo, RiskRank, SessionKeyStatus};
use crate::ports::errors::{Upstream, UpstreamError};
use crate::ports::secrets::SecretSource;
use crate::ports::token_cache::TokenCache;
use crate::ports::wechat::WeChatApi;
use crate::runtime::deadline::Deadline;
use crate::wechat::OneTimeCode;
use crate::wechat::access_token::AccessTokens;

/// WeChat calls made on a user's behalf with their app's access token.
pub trait WeChatServerApi: Send + Sync + 'static {
    /// `getuserphonenumber`: the phone number behind a getPhoneNumber code.
    fn phone_number(
        &self,
        appid: &AppId,
        code: &str,
        openid: &str,
        deadline: Deadline,
    ) -> impl Future<Output = Result<PhoneInfo, UpstreamError>> + Send;

    /// `wxa/checksession`: does WeChat still hold this session_key?
    fn check_session_key(
        &self,
        appid: &AppId,
        openid: &str,
        session_key: &SessionKey,
        deadline: Deadline,
    ) -> impl Future<Output = Result<SessionKeyStatus, UpstreamError>> + Send;

    /// `wxa/getuserriskrank`, scene 0: WeChat's risk rank of a sign-up.
    fn risk_rank(
        &self,
        appid: &AppId,
        openid: &str,
        client_ip: &str,
        deadline: Deadline,
    ) -> impl Future<Output = Result<RiskRank, UpstreamError>> + Send;
}

impl<C: TokenCache, W: WeChatApi, K: SecretSource> WeChatServerApi for AccessTokens<C, W, K> {
    async fn phone_number(
        &self,
        appid: &AppId,
        code: &str,
        openid: &str,
        deadline: Deadline,
    ) -> Result<PhoneInfo, UpstreamError> {
        // A phone code is single-use too: WeChat answers 40029 to a spent one.
        let watch = OneTimeCode::default();
        let result = self
            .call(appid, deadline, |token, timeout| {
                let watch = &watch;
                async move {
                    watch
                        .attempt(
                            self.wechat()
                                .get_phone_number(&token, code, openid, timeout),
                        )
                        .await
                }
            })
            .await;
        let refusal = match &result {
            Err(UpstreamError::WeChat(err)) => Some(err),
            _ => None,
        };
        watch.spent_by_our_retry(refusal, "getuserphonenumber");
        result
    }

    async fn check_session_key(
        &self,
        appid: &AppId,
        openid: &str,
        session_key: &SessionKey,
        deadline: Deadline,
    ) -> Result<SessionKeyStatus, UpstreamError> {
        let signature = checksession_signature(session_key);
        let signature = signature.as_str();
        self.call(appid, deadline, |token, timeout| async move {
            self.wechat()
                .check_session_key(&token, openid, signature, timeout)
                .await
        })
        .await
    }

    async fn risk_rank(
        &self,
        appid: &AppId,
        openid: &str,
        client_ip: &str,
        deadline: Deadline,
    ) -> Result<RiskRank, UpstreamError> {
        self.call(appid, deadline, |token, timeout| async move {
            self.wechat()
                .user_risk_rank(&token, appid.as_str(), openid, client_ip, timeout)
                .await
        })
        .await
    }
}

/// A function deployed without `WECHAT_SECRET_ID` holds `None`: the core
/// routes work, the routes that need WeChat answer 503 and say why in the log.
impl<A: WeChatServerApi> WeChatServerApi for Option<A> {
    async fn phone_number(
        &self,
        appid: &AppId,
        code: &str,
        openid: &str,
        deadline: Deadline,
    ) -> Result<PhoneInfo, UpstreamError> {
        match self {
            Some(api) => api.phone_number(appid, code, openid, deadline).await,
            None => Err(unconfigured()),
        }
    }

    async fn check_session_key(
        &self,
        appid: &AppId,
        openid: &str,
        session_key: &SessionKey,
        deadline: Deadline,
    ) -> Result<SessionKeyStatus, UpstreamError> {
        match self {
            Some(api) => {
                api.check_session_key(appid, openid, session_key, deadline)
                    .await
            }
            None => Err(unconfigured()),
        }
    }

    async fn risk_rank(
        &self,
        appid: &AppId,
        openid: &str,
        client_ip: &str,
        deadline: Deadline,
    ) -> Result<RiskRank, UpstreamError> {
        match self {
            Some(api) => api.risk_rank(appid, openid, client_ip, deadline).await,
            None => Err(unconfigured()),
        }
    }
}

fn unconfigured() -> UpstreamError {
    tracing::error!("this route needs WeChat's access token: set WECHAT_SECRET_ID");
    UpstreamError::Unavailable(Upstream::SecretStore)
}

/// What a handler built without `with_wechat` holds: always `None`.
pub type NoAccessToken = Option<Unconfigured>;

/// A type with no values, so `NoAccessToken` can only be `None`.
#[derive(Debug, Clone, Copy)]
pub enum Unconfigured {}

impl WeChatServerApi for Unconfigured {
    async fn phone_number(
        &self,
        _: &AppId,
        _: &str,
        _: &str,
        _: Deadline,
    ) -> Result<PhoneInfo, UpstreamError> {
        match *self {}
    }

    async fn check_session_key(
        &self,
        _: &AppId,
        _: &str,
        _: &SessionKey,
        _: Deadline,
    ) -> Result<SessionKeyStatus, UpstreamError> {
        match *self {}
    }

    async fn risk_rank(
        &self,
        _: &AppId,
        _: &str,
        _: &str,
        _: Deadline,
    ) -> Result<RiskRank, UpstreamError> {
        match *self {}
    }
}
