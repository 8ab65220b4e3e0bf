//! `WeChatApi` over HTTPS with reqwest (rustls).

use std::time::{Duration, Instant};

use super::answer::{
    parse_check_session, parse_jscode2session, parse_oauth_access_token, parse_oauth_unionid,
    parse_phone_number, parse_risk_rank, parse_stable_token,
};
use crate::domain::redact::{AccessToken, AppSecret};
use crate::domain::wechat::{
    FetchedToken, OAuthGrant, PhoneInfo, RiskRank, SessionKeyStatus, WeChatError, WxSession,
};
use crate::ports::wechat::WeChatApi;
use crate::runtime::metrics;

/// WeChat's answers are a few hundred bytes; anything far larger is not one, and
/// is not read whole.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct HttpWeChat {
    client: reqwest::Client,
    base: String,
}

impl HttpWeChat {
    /// WeChat's API answers from China; 2 s covers a slow TCP + TLS handshake.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

    /// `base` is `WECHAT_API_BASE`, e.g. `https://api.weixin.qq.com`.
    pub fn new(base: &str, connect_timeout: Duration) -> Result<Self, reqwest::Error> {
        let roots = crate::runtime::tls::trusted_roots()
            .map(reqwest::Certificate::from_der)
            .collect::<Result<Vec<_>, _>>()?;
        let client = reqwest::Client::builder()
            // Compiled-in roots (and AWS_CA_BUNDLE's): no certificate directory read at start-up.
            .tls_certs_only(roots)
            .connect_timeout(connect_timeout)
            // The URL carries the appsecret: never hand it to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }
}

impl HttpWeChat {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    /// A POST of a JSON body (WeChat reads it whatever the Content-Type, but says JSON).
    fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }
}

/// Sends one attempt, parses it, and counts it (API, errcode or failure, latency).
async fn call<T>(
    api: &'static str,
    request: reqwest::RequestBuilder,
    timeout: Duration,
    parse: impl FnOnce(&[u8]) -> Result<T, WeChatError>,
    ok_result: impl FnOnce(&T) -> &'static str,
) -> Result<T, WeChatError> {
    let started = Instant::now();
    let result = match send(request, timeout).await {
        Ok(body) => parse(&body),
        Err(err) => Err(err),
    };
    let label = match &result {
        Ok(value) => ok_result(value).to_owned(),
        Err(err) => err.result_label(),
    };
    metrics::wechat_call(api, &label, started.elapsed());
    result
}

/// Sends one attempt within `timeout` and reads the answer, capped.
async fn send(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Vec<u8>, WeChatError> {
    let response = request
        .timeout(timeout)
        .send()
        .await
        .map_err(transport_error)?;
    read_capped(response).await
}

impl WeChatApi for HttpWeChat {
    /// A HEAD of the API root: no credentials, and the kept-alive connection
    /// serves the first jscode2session.
    async fn warm_up(&self) {
        let answer = self
            .client
            .head(format!("{}/", self.base))
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await;
        if let Err(err) = answer {
            tracing::warn!(error = %err.without_url(), "WeChat warm-up failed; the first login will connect");
        }
    }

    async fn jscode2session(
        &self,
        appid: &str,
        secret: &AppSecret,
        code: &str,
        timeout: Duration,
    ) -> Result<WxSession, WeChatError> {
        let request = self.get("/sns/jscode2session").query(&[
            ("appid", appid),
            ("secret", secret.expose()),
            ("js_code", code),
            ("grant_type", "authorization_code"),
        ]);
        call(
            "jscode2session",
            request,
            timeout,
            parse_jscode2session,
            |_| "0",
        )
        .await
    }

    async fn stable_token(
        &self,
        appid: &str,
        secret: &AppSecret,
        force_refresh: bool,
        timeout: Duration,
    ) -> Result<FetchedToken, WeChatError> {
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": appid,
            "secret": secret.expose(),
            "force_refresh": force_refresh,
        });
        let request = self.post_json("/cgi-bin/stable_token", &body);
        call(
            "stable_token",
            request,
            timeout,
            parse_stable_token,
            |_| "0",
        )
        .await
    }

    async fn get_phone_number(
        &self,
        token: &AccessToken,
        code: &str,
        openid: &str,
        timeout: Duration,
    ) -> Result<PhoneInfo, WeChatError> {
        let body = serde_json::json!({ "code": code, "openid": openid });
        let request = self
            .post_json("/wxa/business/getuserphonenumber", &body)
            .query(&[("access_token", token.expose())]);
        call(
            "getuserphonenumber",
            request,
            timeout,
            parse_phone_number,
            |_| "0",
        )
        .await
    }

    async fn check_session_key(
        &self,
        token: &AccessToken,
        openid: &str,
        signature: &str,
        timeout: Duration,
    ) -> Result<SessionKeyStatus, WeChatError> {
        let request = self.get("/wxa/checksession").query(&[
            ("access_token", token.expose()),
            ("openid", openid),
            ("signature", signature),
            ("sig_method", "hmac_sha256"),
        ]);
        call(
            "checksession",
            request,
            timeout,
            parse_check_session,
            |status| match status {
                SessionKeyStatus::Valid => "0",
                SessionKeyStatus::Invalid => "87009",
            },
        )
        .await
    }

    async fn oauth_access_token(
        &self,
        appid: &str,
        secret: &AppSecret,
        code: &str,
        timeout: Duration,
    ) -> Result<OAuthGrant, WeChatError> {
        let request = self.get("/sns/oauth2/access_token").query(&[
            ("appid", appid),
            ("secret", secret.expose()),
            ("code", code),
            ("grant_type", "authorization_code"),
        ]);
        call(
            "oauth2_access_token",
            request,
            timeout,
            parse_oauth_access_token,
            |_| "0",
        )
        .await
    }

    async fn oauth_unionid(
        &self,
        user_token: &AccessToken,
        openid: &str,
        timeout: Duration,
    ) -> Result<Option<String>, WeChatError> {
        let request = self.get("/sns/userinfo").query(&[
            ("access_token", user_token.expose()),
            ("openid", openid),
            ("lang", "zh_CN"),
        ]);
        call("userinfo", request, timeout, parse_oauth_unionid, |_| "0").await
    }

    async fn user_risk_rank(
        &self,
        token: &AccessToken,
        appid: &str,
        openid: &str,
        client_ip: &str,
        timeout: Duration,
    ) -> Result<RiskRank, WeChatError> {
        let body = serde_json::json!({
            "appid": appid,
            "openid": openid,
            "scene": 0,
            "client_ip": client_ip,
        });
        let request = self
            .post_json("/wxa/getuserriskrank", &body)
            .query(&[("access_token", token.expose())]);
        call(
            "getuserriskrank",
            request,
            timeout,
            parse_risk_rank,
            |_| "0",
        )
        .await
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, WeChatError> {
    let too_large = WeChatError::Malformed("answer too large");
    if response
        .content_length()
        .is_some_and(|len| len > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// reqwest's messages include the URL, and ours carry the appsecret or the access token.
fn transport_error(err: reqwest::Error) -> WeChatError {
    if err.is_timeout() {
        WeChatError::Timeout
    } else {
        WeChatError::Transport(err.without_url().to_string())
    }
}
