//! The API Gateway Lambda authorizer: the wxauth login state for the team's own
//! APIs. Reads the session table only.

use wxauth::aws::{DynamoSessionStore, load_sdk_config};
use wxauth::edge::events::run;
use wxauth::handlers::authorizer::Authorizer;
use wxauth::runtime::config::{AuthorizerConfig, ProcessEnv};
use wxauth::runtime::startup::{begin, or_exit};
use wxauth::services::access::TokenCheck;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    begin("authorizer");
    let config = or_exit("authorizer", AuthorizerConfig::from_env(&ProcessEnv));
    let sdk = load_sdk_config().await;
    let authorizer = Authorizer::new(DynamoSessionStore::new(&sdk, config.table))
        .with_token_check(TokenCheck::new(config.jwt));
    authorizer.warm_up().await;
    run(authorizer).await
}
