//! `GET /session` and `POST /session`: session validity and rawData signatures;
//! `DELETE /session`: logout; `?verify=wechat`: WeChat's checksession;
//! `GET`/`DELETE /account`; the JWKS and OpenID configuration.

use wxauth::aws::{DynamoSessionStore, load_sdk_config, shared_access_tokens};
use wxauth::edge::lambda::run;
use wxauth::handlers::{CheckSession, LogSettings};
use wxauth::ports::errors::Access;
use wxauth::ports::sessions::SessionStore;
use wxauth::runtime::config::{CheckSessionConfig, ProcessEnv};
use wxauth::runtime::startup::{begin, or_exit};
use wxauth::services::access::TokenCheck;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    begin("check-session");
    let config = or_exit("check-session", CheckSessionConfig::from_env(&ProcessEnv));
    let sdk = load_sdk_config().await;
    let log = LogSettings {
        appid: config
            .apps
            .as_ref()
            .map(|apps| apps.default_app().id.clone()),
        retention_days: config.login_log.retention_days,
    };
    let mut token_check = TokenCheck::new(config.jwt);
    if let Some(apps) = config.apps {
        token_check = token_check.with_apps(apps);
    }
    let store = DynamoSessionStore::new(&sdk, config.table).with_login_log(config.login_log.table);
    let tokens = or_exit(
        "check-session",
        shared_access_tokens(&sdk, &store, config.access_token),
    );
    store.warm_up(Access::Read).await;
    run(CheckSession::new(store)
        .with_wechat(tokens)
        .with_log_settings(log)
        .with_token_check(token_check))
    .await
}
