//! DynamoDB Local and moto's Secrets Manager, started by `infra/test.sh`.

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

pub const REGION: &str = "us-east-1";

/// Endpoints of the stand-ins, from the environment `infra/test.sh` exports.
#[derive(Debug, Clone)]
pub struct StandIns {
    pub dynamodb: String,
    pub secrets_manager: String,
}

impl StandIns {
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!(
                    "{name} is not set: run the integration tests through `bash infra/test.sh`, \
                     which installs and starts DynamoDB Local and moto"
                )
            })
        };
        Self {
            dynamodb: var("WXAUTH_TEST_DYNAMODB_ENDPOINT"),
            secrets_manager: var("WXAUTH_TEST_SECRETS_MANAGER_ENDPOINT"),
        }
    }

    /// The product's SDK configuration, pointed at `endpoint` with dummy credentials.
    pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
        wxauth::aws::sdk_config_loader()
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "wxauth-tests"))
            .endpoint_url(endpoint)
            .load()
            .await
    }

    pub async fn dynamodb_client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&Self::sdk_config(&self.dynamodb).await)
    }

    pub async fn secrets_client(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&Self::sdk_config(&self.secrets_manager).await)
    }

    /// A fresh session table as the template defines it (pk String, on demand).
    /// TTL stays off: DynamoDB Local would delete expired items within seconds,
    /// and the code's own expiry check is what the tests exercise.
    pub async fn create_table(&self) -> String {
        let name = crate::unique("sessions");
        self.dynamodb_client()
            .await
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute definition"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key schema"),
            )
            .send()
            .await
            .expect("create table in DynamoDB Local");
        name
    }

    /// A fresh login log table as the template defines it (userId + at, on
    /// demand). TTL off, as for the session table.
    pub async fn create_log_table(&self) -> String {
        let name = crate::unique("login-log");
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .expect("key schema")
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition")
        };
        self.dynamodb_client()
            .await
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("userId"))
            .attribute_definitions(attribute("at"))
            .key_schema(key("userId", KeyType::Hash))
            .key_schema(key("at", KeyType::Range))
            .send()
            .await
            .expect("create the login log table in DynamoDB Local");
        name
    }

    /// A fresh secret in moto; returns its ARN.
    pub async fn create_secret(&self, value: &str) -> String {
        let out = self
            .secrets_client()
            .await
            .create_secret()
            .name(crate::unique("wxauth/appsecret"))
            .secret_string(value)
            .send()
            .await
            .expect("create secret in moto");
        out.arn().expect("secret ARN").to_owned()
    }

    /// Rotation as an operator does it: a new version becomes AWSCURRENT.
    pub async fn rotate_secret(&self, arn: &str, value: &str) {
        self.secrets_client()
            .await
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value)
            .send()
            .await
            .expect("put secret value in moto");
    }
}

/// An endpoint where nothing listens: connections are refused at once.
pub async fn closed_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}
