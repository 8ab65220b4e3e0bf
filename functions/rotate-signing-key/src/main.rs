//! Secrets Manager's rotation of the JWT signing key: createSecret (a new
//! RSA-2048 key), setSecret (publish its public half), testSecret,
//! finishSecret.

use wxauth::aws::{DynamoSessionStore, SecretsManagerSigningKeys, load_sdk_config};
use wxauth::edge::events::run;
use wxauth::handlers::rotation::Rotation;
use wxauth::runtime::config::{ProcessEnv, RotationConfig};
use wxauth::runtime::startup::{begin, or_exit};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    begin("rotate-signing-key");
    let config = or_exit("rotate-signing-key", RotationConfig::from_env(&ProcessEnv));
    let sdk = load_sdk_config().await;
    let store = DynamoSessionStore::new(&sdk, config.table);
    let secrets = move |secret_id: String| SecretsManagerSigningKeys::new(&sdk, secret_id);
    run(Rotation::new(
        secrets,
        store,
        config.secret_id,
        config.lifetimes,
    ))
    .await
}
