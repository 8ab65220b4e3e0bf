//! `POST /login`: exchanges a wx.login code for a wxauth session token;
//! `POST /refresh`: a new session from a refresh token.

use wxauth::aws::{
    DynamoSessionStore, SecretsManagerSigningKeys, SecretsManagerSource, load_sdk_config,
};
use wxauth::edge::lambda::run;
use wxauth::handlers::{Login, LoginSettings};
use wxauth::runtime::config::{LoginConfig, ProcessEnv};
use wxauth::runtime::startup::{begin, or_exit};
use wxauth::services::issuer::JwtIssuer;
use wxauth::wechat::{HttpWeChat, RetryPolicy};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    begin("login");
    let config = or_exit("login", LoginConfig::from_env(&ProcessEnv));
    let sdk = load_sdk_config().await;
    let wechat = or_exit(
        "login",
        HttpWeChat::new(&config.api_base, HttpWeChat::CONNECT_TIMEOUT),
    );
    let login = Login::new(
        DynamoSessionStore::new(&sdk, config.table).with_login_log(config.login_log.table),
        wechat,
        SecretsManagerSource::new(&sdk, config.secret_id),
        LoginSettings {
            appid: config.appid.clone(),
            session_ttl_seconds: config.session_ttl_seconds,
            retry: RetryPolicy::default(),
            log_retention_days: config.login_log.retention_days,
        },
    )
    .with_single_session(config.single_session)
    .with_refresh(config.refresh);
    match config.signing {
        None => {
            login.warm_up().await;
            run(login).await
        }
        Some(signing) => {
            let login = login.with_jwt(
                JwtIssuer::new(
                    SecretsManagerSigningKeys::new(&sdk, signing.secret_id),
                    signing.jwt,
                    config.appid,
                    signing.lead_seconds,
                )
                .with_reread_ms(signing.reread_seconds * 1000),
            );
            // Published before anything is signed; a bad key stops here.
            let (loaded, ()) = tokio::join!(login.load_signing_keys(), login.warm_up());
            or_exit(
                "login",
                loaded.map_err(|err| format!("SIGNING_KEY_SECRET_ID: {err}")),
            );
            run(login).await
        }
    }
}
