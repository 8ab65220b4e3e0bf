//! Adapters to AWS: the session and login log tables in DynamoDB
//! (`dynamodb`), the appsecret and the signing key in Secrets Manager, and
//! the SDK's configuration every function builds once at init.

mod dynamodb;
mod secrets_manager;
mod signing_secret;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

pub use dynamodb::{
    ACCESS_TOKEN_PREFIX, ACCOUNT_PREFIX, CALLER_ATTRIBUTES, DynamoSessionStore, IDENTITY_PREFIX,
    PUBLISHED_KEYS_ATTRIBUTE, PUBLISHED_KEYS_PK, UNIONID_PREFIX, USER_PREFIX,
};
pub use secrets_manager::SecretsManagerSource;
pub use signing_secret::SecretsManagerSigningKeys;

use crate::runtime::config::AccessTokenConfig;
use crate::wechat::access_token::AccessTokens;
use crate::wechat::{HttpWeChat, RetryPolicy};

/// The access token as a deployed function gets it: shared through the session
/// table, fetched with the appsecret from Secrets Manager. Nothing is fetched
/// here: the secret is read only when a token must be fetched.
pub type SharedAccessTokens = AccessTokens<DynamoSessionStore, HttpWeChat, SecretsManagerSource>;

/// Builds `SharedAccessTokens` when the function is configured for them.
pub fn shared_access_tokens(
    sdk: &aws_config::SdkConfig,
    store: &DynamoSessionStore,
    config: Option<AccessTokenConfig>,
) -> Result<Option<SharedAccessTokens>, reqwest::Error> {
    let Some(config) = config else {
        return Ok(None);
    };
    let wechat = HttpWeChat::new(&config.api_base, HttpWeChat::CONNECT_TIMEOUT)?;
    Ok(Some(AccessTokens::new(
        store.clone(),
        wechat,
        SecretsManagerSource::new(sdk, config.secret_id, config.default_app),
        RetryPolicy::default(),
    )))
}

/// The SDK configuration every function builds once at init. The standard AWS
/// variables apply, `AWS_ENDPOINT_URL_DYNAMODB` and
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER` included.
///
/// Timeouts are explicit so that a stalled endpoint costs a bounded slice of the
/// 8-second answer budget; the standard retry mode absorbs throttling.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    sdk_config_loader().load().await
}

/// The loader behind `load_sdk_config`, for callers (tests, local tools) that
/// set region, credentials or endpoint in code rather than in the environment.
pub fn sdk_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
}

/// The SDK's default HTTPS client (hyper + rustls with AWS-LC), with the
/// compiled-in roots instead of the system's certificate directory.
fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let trust_store = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(crate::runtime::tls::trusted_roots_pem());
    let builder = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(
        tls::rustls_provider::CryptoMode::AwsLc,
    ));
    match TlsContext::builder().with_trust_store(trust_store).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // Cannot happen with valid roots; the default context is still correct.
        Err(err) => {
            tracing::warn!(error = %err, "compiled-in TLS roots refused; using the system's");
            builder.build_https()
        }
    }
}
