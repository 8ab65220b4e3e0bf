//! `POST /phone`: decrypts the phone number a mini-program received.

use wxauth::aws::{DynamoSessionStore, load_sdk_config};
use wxauth::config::{DecryptPhoneConfig, ProcessEnv};
use wxauth::handlers::DecryptPhone;
use wxauth::lambda::{init_logging, or_exit, run};
use wxauth::session::{Access, SessionStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let config = or_exit("decrypt-phone", DecryptPhoneConfig::from_env(&ProcessEnv));
    let sdk = load_sdk_config().await;
    let store = DynamoSessionStore::new(&sdk, config.table);
    store.warm_up(Access::Read).await;
    let phone = DecryptPhone::new(store, config.appid)
        .with_watermark_max_age(config.watermark_max_age_seconds);
    run(phone).await
}
