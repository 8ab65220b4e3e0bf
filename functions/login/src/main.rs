//! `POST /login`: exchanges an app's code (a mini-program's wx.login code, an
//! `oauth` app's OAuth code) for a wxauth session token; `POST /refresh`: a
//! new session from a refresh token.

use std::sync::Arc;

use wxauth::aws::{
    DynamoSessionStore, SecretsManagerSigningKeys, SecretsManagerSource, load_sdk_config,
};
use wxauth::edge::lambda::run;
use wxauth::handlers::{Login, LoginSettings};
use wxauth::runtime::config::{LoginConfig, ProcessEnv};
use wxauth::runtime::startup::{begin, or_exit};
use wxauth::services::issuer::JwtIssuer;
use wxauth::wechat::access_token::AccessTokens;
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
    let default_app = config.apps.default_app().id.clone();
    let secrets = Arc::new(SecretsManagerSource::new(
        &sdk,
        config.secret_id,
        default_app.clone(),
    ));
    let store = DynamoSessionStore::new(&sdk, config.table).with_login_log(config.login_log.table);
    // The sign-up's risk rank needs the app's access token, shared through the table.
    let access = config.risk.checks().then(|| {
        AccessTokens::new(
            store.clone(),
            wechat.clone(),
            Arc::clone(&secrets),
            RetryPolicy::default(),
        )
    });
    let login = Login::new(
        store,
        wechat,
        secrets,
        LoginSettings {
            apps: config.apps,
            session_ttl_seconds: config.session_ttl_seconds,
            retry: RetryPolicy::default(),
            log_retention_days: config.login_log.retention_days,
            risk: config.risk,
        },
    )
    .with_single_session(config.single_session)
    .with_refresh(config.refresh)
    .with_access_tokens(access);
    or_exit("login", login.check_appsecrets().await);
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
                    default_app,
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
