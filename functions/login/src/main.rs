//! `POST /login`: exchanges a wx.login code for a wxauth session token.

use wxauth::aws::{DynamoSessionStore, SecretsManagerSource, load_sdk_config};
use wxauth::config::{LoginConfig, ProcessEnv};
use wxauth::edge::lambda::run;
use wxauth::edge::startup::{init_logging, or_exit};
use wxauth::handlers::{Login, LoginSettings};
use wxauth::wechat::{HttpWeChat, RetryPolicy};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
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
            appid: config.appid,
            session_ttl_seconds: config.session_ttl_seconds,
            retry: RetryPolicy::default(),
            log_retention_days: config.login_log.retention_days,
        },
    );
    let login = login.with_single_session(config.single_session);
    login.warm_up().await;
    run(login).await
}
