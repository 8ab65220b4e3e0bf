//! Secrets Manager's rotation of the JWT signing key: createSecret (a new
//! RSA-2048 key), setSecret (publish its public half), testSecret,
//! finishSecret.

use wxauth::aws::{DynamoSessionStore, load_sdk_config};
use wxauth::config::{ProcessEnv, RotationConfig};
use wxauth::edge::rotation::run;
use wxauth::edge::startup::{begin, or_exit};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    begin("rotate-signing-key");
    let config = or_exit("rotate-signing-key", RotationConfig::from_env(&ProcessEnv));
    let sdk = load_sdk_config().await;
    let store = DynamoSessionStore::new(&sdk, config.table);
    run(sdk, store, config.secret_id, config.lifetimes).await
}
