//! Calls that need the appsecret: with the cached one, and once more with a
//! fresh one when WeChat refuses it (it may have been rotated).

use std::future::Future;

use tracing::warn;

use crate::domain::app::AppId;
use crate::domain::redact::AppSecret;
use crate::domain::wechat::WeChatError;
use crate::ports::errors::{Upstream, UpstreamError};
use crate::ports::secrets::{SecretError, SecretSource};
use crate::runtime::deadline::Deadline;

/// Runs a WeChat call that needs the appsecret, with the cached one. If WeChat
/// refuses it (40001/40125), it may have been rotated: it is read again once and
/// the call runs once more. WeChat's failures come back as they are; the edge says what they mean.
pub async fn with_appsecret<T, F, Fut>(
    secrets: &impl SecretSource,
    appid: &AppId,
    deadline: Deadline,
    mut call: F,
) -> Result<T, UpstreamError>
where
    F: FnMut(AppSecret) -> Fut,
    Fut: Future<Output = Result<T, WeChatError>>,
{
    let secret = fetch_appsecret(secrets, appid, deadline, false).await?;
    match call(secret).await {
        Err(WeChatError::BadCredential(errcode)) => {
            warn!(
                errcode,
                "WeChat refused the appsecret; fetching it again in case it was rotated"
            );
            let secret = fetch_appsecret(secrets, appid, deadline, true).await?;
            call(secret).await.map_err(UpstreamError::WeChat)
        }
        result => result.map_err(UpstreamError::WeChat),
    }
}

/// The appsecret for a request (`refresh`: bypassing the cache), within the
/// deadline. Any failure is a 503 naming the secret store.
async fn fetch_appsecret(
    secrets: &impl SecretSource,
    appid: &AppId,
    deadline: Deadline,
    refresh: bool,
) -> Result<AppSecret, UpstreamError> {
    let fetched = if refresh {
        deadline.run(secrets.refresh(appid)).await
    } else {
        deadline.run(secrets.appsecret(appid)).await
    };
    match fetched {
        Some(Ok(secret)) => Ok(secret),
        Some(Err(err @ (SecretError::Malformed(_) | SecretError::Missing(_)))) => {
            tracing::error!(error = %err, "the appsecret in Secrets Manager is unusable");
            Err(UpstreamError::Unavailable(Upstream::SecretStore))
        }
        Some(Err(err)) => {
            warn!(error = %err, "appsecret fetch failed");
            Err(UpstreamError::Unavailable(Upstream::SecretStore))
        }
        None => {
            warn!("appsecret fetch ran out of time");
            Err(UpstreamError::Unavailable(Upstream::SecretStore))
        }
    }
}
