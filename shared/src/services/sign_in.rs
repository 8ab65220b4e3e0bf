//! Who WeChat says is signing in: a mini-program's wx.login code through
//! `jscode2session`, an `oauth` app's code through `sns/oauth2/access_token`
//! (and `sns/userinfo` for a unionid). Each code is single-use, tried as the
//! retry policy allows, with the cached appsecret and once more with a fresh
//! one if WeChat refuses it.

use crate::domain::app::{App, AppId, AppKind};
use crate::domain::redact::AppSecret;
use crate::domain::wechat::{OAuthGrant, SignedIn, WeChatError, WxSession};
use crate::ports::errors::UpstreamError;
use crate::ports::secrets::SecretSource;
use crate::ports::wechat::WeChatApi;
use crate::runtime::deadline::Deadline;
use crate::wechat::{OneTimeCode, RetryPolicy, with_appsecret, with_retry};

/// The person behind `code`, as `app`'s kind of sign-in says.
pub async fn sign_in(
    wechat: &impl WeChatApi,
    secrets: &impl SecretSource,
    app: &App,
    code: &str,
    retry: RetryPolicy,
    deadline: Deadline,
) -> Result<SignedIn, UpstreamError> {
    match app.kind {
        AppKind::MiniProgram => code_to_session(wechat, secrets, &app.id, code, retry, deadline)
            .await
            .map(SignedIn::from),
        AppKind::OAuth => oauth_sign_in(wechat, secrets, &app.id, code, retry, deadline).await,
    }
}

/// `jscode2session` for `code`, with the cached appsecret and once more with
/// a fresh one if WeChat refuses it; one code, tried as the retry policy
/// allows (see `OneTimeCode`).
pub async fn code_to_session(
    wechat: &impl WeChatApi,
    secrets: &impl SecretSource,
    appid: &AppId,
    code: &str,
    retry: RetryPolicy,
    deadline: Deadline,
) -> Result<WxSession, UpstreamError> {
    with_appsecret(secrets, appid, deadline, |secret: AppSecret| async move {
        let watch = OneTimeCode::default();
        let result: Result<WxSession, WeChatError> = with_retry(retry, deadline, |timeout| {
            let secret = &secret;
            watch.attempt(wechat.jscode2session(appid.as_str(), secret, code, timeout))
        })
        .await;
        watch.spent_by_our_retry(result.as_ref().err(), "jscode2session");
        result
    })
    .await
}

/// An `oauth` app's sign-in: the code its page got from WeChat's redirect
/// (or the mobile SDK) to `sns/oauth2/access_token`, like a wx.login code
/// single-use; then, when that answer has no unionid and the user granted
/// `snsapi_userinfo`, `sns/userinfo` for it (its failure fails the login
/// like the token call's). The user's access and refresh tokens go nowhere
/// but that one call.
pub async fn oauth_sign_in(
    wechat: &impl WeChatApi,
    secrets: &impl SecretSource,
    appid: &AppId,
    code: &str,
    retry: RetryPolicy,
    deadline: Deadline,
) -> Result<SignedIn, UpstreamError> {
    let grant = with_appsecret(secrets, appid, deadline, |secret: AppSecret| async move {
        let watch = OneTimeCode::default();
        let result: Result<OAuthGrant, WeChatError> = with_retry(retry, deadline, |timeout| {
            let secret = &secret;
            watch.attempt(wechat.oauth_access_token(appid.as_str(), secret, code, timeout))
        })
        .await;
        watch.spent_by_our_retry(result.as_ref().err(), "oauth2_access_token");
        result
    })
    .await?;
    let unionid = match (&grant.unionid, grant.allows_userinfo()) {
        (None, true) => with_retry(retry, deadline, |timeout| {
            wechat.oauth_unionid(&grant.access_token, &grant.openid, timeout)
        })
        .await
        .map_err(UpstreamError::WeChat)?,
        _ => grant.unionid.clone(),
    };
    Ok(SignedIn {
        openid: grant.openid,
        unionid,
        session_key: None,
    })
}
