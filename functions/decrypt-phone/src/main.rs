//! `POST /phone`: the user's phone number, decrypted or fetched by code;
//! `POST /open-data`: other decrypted open data.

use wxauth::aws::{DynamoSessionStore, load_sdk_config, shared_access_tokens};
use wxauth::edge::lambda::run;
use wxauth::handlers::DecryptPhone;
use wxauth::ports::errors::Access;
use wxauth::ports::sessions::SessionStore;
use wxauth::runtime::config::{DecryptPhoneConfig, ProcessEnv};
use wxauth::runtime::startup::{begin, or_exit};
use wxauth::services::access::TokenCheck;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    begin("decrypt-phone");
    let config = or_exit("decrypt-phone", DecryptPhoneConfig::from_env(&ProcessEnv));
    let sdk = load_sdk_config().await;
    let store = DynamoSessionStore::new(&sdk, config.table);
    let tokens = or_exit(
        "decrypt-phone",
        shared_access_tokens(&sdk, &store, config.access_token),
    );
    store.warm_up(Access::Read).await;
    let phone = DecryptPhone::new(store, config.apps)
        .with_watermark_max_age(config.watermark_max_age_seconds)
        .with_bind_phone(config.bind_phone)
        .with_wechat(tokens)
        .with_token_check(TokenCheck::new(config.jwt));
    run(phone).await
}
