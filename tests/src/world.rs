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
use wechat_sim::{Issued, SimApp, WeChatSim};
use wxauth::domain::app::{AppId, Apps};
use wxauth::domain::risk::RiskPolicy;

/// The default app: the one mini-program of a single-app world, the first of
/// a world of several.
pub const APPID: &str = "wx4f4bc4dec97d474b";
/// A world of several apps: a second mini-program, and an official
/// account's H5 pages (`oauth`), all bound to one Open Platform account.
pub const SECOND_APPID: &str = "wx5c5dc6dec97d474c";
pub const OAUTH_APPID: &str = "wx6e6fc7dec97d474d";

pub type LoginHandler = Login<DynamoSessionStore, HttpWeChat, SecretsManagerSource>;

pub struct World {
    pub standins: StandIns,
    pub wechat: WeChatSim,
    /// The apps it serves; the first is the default. One: the functions get
    /// `WECHAT_APPID` and a bare appsecret, as a single-app stack does.
    pub apps: Vec<SimApp>,
    pub table: String,
    /// The login log table: in every function's environment, and where
    /// `store()` writes its entries.
    pub log_table: String,
    pub secret_arn: String,
    pub appsecret: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl World {
    /// One mini-program, `APPID`.
    pub async fn new() -> Self {
        let appsecret = crate::unique("appsecret");
        Self::with_apps(vec![SimApp::mini_program(APPID, &appsecret)]).await
    }

    /// Two mini-programs and an `oauth` app, bound to one Open Platform
    /// account, each with its appsecret in one secret (`{"appsecrets": ..}`).
    pub async fn several_apps() -> Self {
        Self::with_apps(vec![
            SimApp::mini_program(APPID, &crate::unique("secret-a")).bound(),
            SimApp::mini_program(SECOND_APPID, &crate::unique("secret-b")).bound(),
            SimApp::oauth(OAUTH_APPID, &crate::unique("secret-c")).bound(),
        ])
        .await
    }

    pub async fn with_apps(apps: Vec<SimApp>) -> Self {
        let standins = StandIns::from_env();
        let wechat = WeChatSim::start_apps(&apps, wechat_sim::UnknownCodes::Refuse)
            .await
            .expect("WeChat simulator on loopback");
        let appsecret = apps[0].secret.clone();
        let secret_text = match apps.as_slice() {
            [_] => appsecret.clone(),
            _ => {
                let secrets: serde_json::Map<String, Value> = apps
                    .iter()
                    .map(|app| (app.appid.clone(), json!(app.secret)))
                    .collect();
                json!({"appsecrets": secrets}).to_string()
            }
        };
        let table = standins.create_table().await;
        let log_table = standins.create_log_table().await;
        let secret_arn = standins.create_secret(&secret_text).await;
        let dynamodb = standins.dynamodb_client().await;
        Self {
            standins,
            wechat,
            apps,
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
            default_app(),
        )
    }

    /// The apps, as `WECHAT_APPS` lists them.
    pub fn app_list(&self) -> String {
        self.apps
            .iter()
            .map(|app| match app.kind {
                wechat_sim::SimKind::MiniProgram => app.appid.clone(),
                wechat_sim::SimKind::OAuth => format!("{}:oauth", app.appid),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn parsed_apps(&self) -> Apps {
        Apps::parse(&self.app_list()).expect("the world's apps")
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
            self.parsed_apps(),
        )
    }

    /// One container's access tokens, shared through this world's table.
    pub async fn access_tokens(&self) -> SharedAccessTokens {
        AccessTokens::new(
            self.store().await,
            HttpWeChat::new(&self.wechat.base, Duration::from_millis(500)).expect("client"),
            self.secrets().await,
            Self::retry(),
        )
    }

    pub async fn phone(&self) -> DecryptPhone<DynamoSessionStore, SharedAccessTokens> {
        DecryptPhone::new(self.store().await, self.parsed_apps())
            .with_wechat(self.access_tokens().await)
    }

    pub async fn check(&self) -> CheckSession<DynamoSessionStore, SharedAccessTokens> {
        CheckSession::new(self.store().await)
            .with_wechat(self.access_tokens().await)
            .with_token_check(
                wxauth::services::access::TokenCheck::default().with_apps(self.parsed_apps()),
            )
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

    /// The variable naming the apps, as the functions get it: `WECHAT_APPID`
    /// for one mini-program, else `WECHAT_APPS`.
    pub fn apps_variable(&self) -> (&'static str, String) {
        match self.apps.len() {
            1 => ("WECHAT_APPID", APPID.to_owned()),
            _ => ("WECHAT_APPS", self.app_list()),
        }
    }

    /// Environment for the function binaries, pointing them at this world.
    pub fn function_env(&self) -> Vec<(&'static str, String)> {
        vec![
            self.apps_variable(),
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
    apps: Apps,
) -> Login<S, HttpWeChat, K> {
    Login::new(
        store,
        HttpWeChat::new(wechat_base, Duration::from_millis(500)).expect("client"),
        secrets,
        LoginSettings {
            apps,
            session_ttl_seconds: 600,
            retry: World::retry(),
            log_retention_days: 180,
            risk: RiskPolicy::default(),
        },
    )
}

/// The key of the account item a first login through the default app
/// writes: its home, the identity (`APPID`, `openid`).
pub fn home_pk(openid: &str) -> String {
    format!("{}{APPID}#{openid}", wxauth::aws::IDENTITY_PREFIX)
}

/// `APPID` as the product's type.
pub fn default_app() -> AppId {
    AppId::parse(APPID).expect("APPID is an appid")
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
