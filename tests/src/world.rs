//! One test's world: its own table and secret on the stand-ins, a fake WeChat,
//! and the product's handlers wired to them as the functions wire them.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use wxauth::aws::{DynamoSessionStore, SecretsManagerSource, SharedAccessTokens};
use wxauth::handlers::{CheckSession, DecryptPhone, Login, LoginSettings};
use wxauth::ports::secrets::SecretSource;
use wxauth::wechat::access_token::AccessTokens;
use wxauth::wechat::{HttpWeChat, RetryPolicy};

use crate::standins::StandIns;
use wechat_sim::{Issued, WeChatSim};

pub const APPID: &str = "wx4f4bc4dec97d474b";

pub type LoginHandler = Login<DynamoSessionStore, HttpWeChat, SecretsManagerSource>;

pub struct World {
    pub standins: StandIns,
    pub wechat: WeChatSim,
    pub table: String,
    /// The login log table: in every function's environment, and where
    /// `store()` writes its entries.
    pub log_table: String,
    pub secret_arn: String,
    pub appsecret: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl World {
    pub async fn new() -> Self {
        let standins = StandIns::from_env();
        let appsecret = crate::unique("appsecret");
        let wechat = WeChatSim::start(APPID, &appsecret)
            .await
            .expect("WeChat simulator on loopback");
        let table = standins.create_table().await;
        let log_table = standins.create_log_table().await;
        let secret_arn = standins.create_secret(&appsecret).await;
        let dynamodb = standins.dynamodb_client().await;
        Self {
            standins,
            wechat,
            table,
            log_table,
            secret_arn,
            appsecret,
            dynamodb,
        }
    }

    pub async fn store(&self) -> DynamoSessionStore {
        DynamoSessionStore::from_client(self.dynamodb.clone(), self.table.clone())
            .with_login_log(Some(self.log_table.clone()))
    }

    /// Every item of a table (a Scan, as an auditor would read it).
    pub async fn scan(
        &self,
        table: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("Scan on DynamoDB Local");
            items.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return items;
            }
        }
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
        login_with(
            self.store().await,
            &self.wechat.base,
            self.secrets().await,
            APPID,
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
    /// The refresh item of `refresh_token` in the session table, if any.
    pub async fn refresh_item(
        &self,
        refresh_token: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.item(&refresh_pk(refresh_token)).await
    }

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
            ("LOGIN_LOG_TABLE", self.log_table.clone()),
            ("WECHAT_API_BASE", self.wechat.base.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.standins.dynamodb.clone()),
            (
                "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                self.standins.secrets_manager.clone(),
            ),
        ]
    }
}

impl World {
    /// `function_env`, with DynamoDB, Secrets Manager and WeChat reached over
    /// TLS, each behind a proxy with a certificate of `ca`, and
    /// `AWS_CA_BUNDLE` naming `ca`'s certificate: as on AWS, where every
    /// endpoint is HTTPS.
    pub async fn function_env_over_tls(
        &self,
        ca: &crate::tls::TestCa,
    ) -> Vec<(&'static str, String)> {
        let dynamodb = ca.front(&self.standins.dynamodb).await;
        let secrets = ca.front(&self.standins.secrets_manager).await;
        let wechat = ca.front(&self.wechat.base).await;
        let mut env: Vec<(&'static str, String)> = self
            .function_env()
            .into_iter()
            .map(|(name, value)| match name {
                "AWS_ENDPOINT_URL_DYNAMODB" => (name, dynamodb.clone()),
                "AWS_ENDPOINT_URL_SECRETS_MANAGER" => (name, secrets.clone()),
                "WECHAT_API_BASE" => (name, wechat.clone()),
                _ => (name, value),
            })
            .collect();
        env.push(("AWS_CA_BUNDLE", ca.bundle.display().to_string()));
        env
    }
}

/// The login handler as the function builds it, over any store, WeChat base and
/// secret source (a fault test's proxy, a closed port, a stand-in that is down).
pub fn login_with<S: wxauth::handlers::LoginFunctionStore, K: SecretSource>(
    store: S,
    wechat_base: &str,
    secrets: K,
    appid: &str,
) -> Login<S, HttpWeChat, K> {
    Login::new(
        store,
        HttpWeChat::new(wechat_base, Duration::from_millis(500)).expect("client"),
        secrets,
        LoginSettings {
            appid: appid.into(),
            session_ttl_seconds: 600,
            retry: World::retry(),
            log_retention_days: 180,
        },
    )
}

/// Encrypts `plaintext` as WeChat does for `getPhoneNumber`.
pub fn encrypt_for(issued: &Issued, plaintext: &str) -> Value {
    let mut iv = [0u8; 16];
    getrandom::fill(&mut iv).expect("random");
    let ciphertext =
        wxauth::domain::crypto::encrypt_like_wechat(&issued.key_bytes, &iv, plaintext.as_bytes());
    json!({"encryptedData": STANDARD.encode(ciphertext), "iv": STANDARD.encode(iv)})
}

pub fn phone_plaintext(appid: &str, phone: &str) -> String {
    json!({
        "phoneNumber": phone,
        "purePhoneNumber": phone,
        "countryCode": "86",
        "watermark": {"appid": appid, "timestamp": wxauth::domain::time::epoch_seconds()}
    })
    .to_string()
}

/// `sha1(rawData + session_key)`, hex, as wx.getUserInfo computes it.
pub fn sign(raw_data: &str, session_key: &str) -> String {
    hex::encode(Sha1::digest(format!("{raw_data}{session_key}").as_bytes()))
}

/// The session table key of `refresh_token`'s item: `refresh#` and its SHA-256.
pub fn refresh_pk(refresh_token: &str) -> String {
    format!(
        "{}{}",
        wxauth::domain::refresh::REFRESH_PREFIX,
        wxauth::domain::refresh::RefreshToken::parse(refresh_token)
            .expect("a refresh token")
            .key()
            .as_str()
    )
}
