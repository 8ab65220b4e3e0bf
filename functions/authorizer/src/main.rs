//! The API Gateway Lambda authorizer: the wxauth login state for the team's own
//! APIs. Reads the session table only.

use wxauth::access::TokenCheck;
use wxauth::authorizer::Authorizer;
use wxauth::aws::{DynamoSessionStore, load_sdk_config};
use wxauth::config::{AuthorizerConfig, ProcessEnv};
use wxauth::edge::authorizer::run;
use wxauth::edge::startup::{begin, or_exit};

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
