//! One test's world: its own table and secret on the stand-ins, a fake WeChat,
//! and the product's handlers wired to them as the functions wire them.

use std::time::Duration;

use aes::Aes128;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use wxauth::access_token::AccessTokens;
use wxauth::aws::{DynamoSessionStore, SecretsManagerSource, SharedAccessTokens};
use wxauth::handlers::{CheckSession, DecryptPhone, Login, LoginSettings};
use wxauth::wechat::{HttpWeChat, RetryPolicy};

use crate::fake_wechat::{FakeWeChat, Issued};
use crate::standins::StandIns;

pub const APPID: &str = "wx4f4bc4dec97d474b";

pub type LoginHandler = Login<DynamoSessionStore, HttpWeChat, SecretsManagerSource>;

pub struct World {
    pub standins: StandIns,
    pub wechat: FakeWeChat,
    pub table: String,
    pub secret_arn: String,
    pub appsecret: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl World {
    pub async fn new() -> Self {
        let standins = StandIns::from_env();
        let appsecret = crate::unique("appsecret");
        let wechat = FakeWeChat::start(APPID, &appsecret).await;
        let table = standins.create_table().await;
        let secret_arn = standins.create_secret(&appsecret).await;
        let dynamodb = standins.dynamodb_client().await;
        Self {
            standins,
            wechat,
            table,
            secret_arn,
            appsecret,
            dynamodb,
        }
    }

    pub async fn store(&self) -> DynamoSessionStore {
        DynamoSessionStore::from_client(self.dynamodb.clone(), self.table.clone())
    }

    pub async fn secrets(&self) -> SecretsManagerSource {
        SecretsManagerSource::from_client(
            self.standins.secrets_client().await,
            self.secret_arn.clone(),
        )
    }

    /// Fast retries so that failure tests stay quick; the policy's shape is the product's.
    pub fn retry() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(10),
            attempt_timeout: Duration::from_millis(800),
        }
    }

    pub async fn login(&self) -> LoginHandler {
        Login::new(
            self.store().await,
            HttpWeChat::new(&self.wechat.base, Duration::from_millis(500)).expect("client"),
            self.secrets().await,
            LoginSettings {
                appid: APPID.into(),
                session_ttl_seconds: 600,
                retry: Self::retry(),
            },
        )
    }

    /// One container's access tokens, shared through this world's table.
    pub async fn access_tokens(&self) -> SharedAccessTokens {
        AccessTokens::new(
            self.store().await,
            HttpWeChat::new(&self.wechat.base, Duration::from_millis(500)).expect("client"),
            self.secrets().await,
            APPID.into(),
            Self::retry(),
        )
    }

    pub async fn phone(&self) -> DecryptPhone<DynamoSessionStore, SharedAccessTokens> {
        DecryptPhone::new(self.store().await, APPID.into()).with_wechat(self.access_tokens().await)
    }

    pub async fn check(&self) -> CheckSession<DynamoSessionStore, SharedAccessTokens> {
        CheckSession::new(self.store().await).with_wechat(self.access_tokens().await)
    }

    /// The table's item under `pk`, read consistently, as the functions read it.
    pub async fn item(
        &self,
        pk: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.dynamodb
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(pk.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem on DynamoDB Local")
            .item
    }

    /// Environment for the function binaries, pointing them at this world.
    pub fn function_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WECHAT_APPID", APPID.into()),
            ("WECHAT_SECRET_ID", self.secret_arn.clone()),
            ("SESSION_TABLE", self.table.clone()),
            ("WECHAT_API_BASE", self.wechat.base.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.standins.dynamodb.clone()),
            (
                "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                self.standins.secrets_manager.clone(),
            ),
        ]
    }
}

/// Encrypts `plaintext` as WeChat does for `getPhoneNumber`.
pub fn encrypt_for(issued: &Issued, plaintext: &str) -> Value {
    let mut iv = [0u8; 16];
    getrandom::fill(&mut iv).expect("random");
    let ciphertext = cbc::Encryptor::<Aes128>::new(&issued.key_bytes.into(), &iv.into())
        .encrypt_padded_vec::<Pkcs7>(plaintext.as_bytes());
    json!({"encryptedData": STANDARD.encode(ciphertext), "iv": STANDARD.encode(iv)})
}

pub fn phone_plaintext(appid: &str, phone: &str) -> String {
    json!({
        "phoneNumber": phone,
        "purePhoneNumber": phone,
        "countryCode": "86",
        "watermark": {"appid": appid, "timestamp": wxauth::session::epoch_seconds()}
    })
    .to_string()
}

/// `sha1(rawData + session_key)`, hex, as wx.getUserInfo computes it.
pub fn sign(raw_data: &str, session_key: &str) -> String {
    hex::encode(Sha1::digest(format!("{raw_data}{session_key}").as_bytes()))
}
