//! Adapters to AWS: the session table in DynamoDB and the appsecret in Secrets Manager.

mod dynamodb;
mod secrets_manager;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

pub use dynamodb::DynamoSessionStore;
pub use secrets_manager::SecretsManagerSource;

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
        .with_pem_certificate(crate::tls::root_certificates_pem());
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
