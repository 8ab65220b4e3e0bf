//! Each function's configuration, by the shared rules of `super`.

use super::{
    AccessTokenConfig, ConfigError, DEFAULT_WATERMARK_MAX_AGE_SECONDS, LoginLogConfig, Lookup,
    SigningConfig, api_base, flag, jwt_settings, lead_seconds, optional, optional_apps,
    refresh_settings, required, required_apps, risk_policy, session_ttl,
};
use crate::domain::app::Apps;
use crate::domain::jwt::JwtSettings;
use crate::domain::refresh::RefreshSettings;
use crate::domain::risk::RiskPolicy;
use crate::domain::rotation::KeyLifetimes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginConfig {
    /// `WECHAT_APPS` (or `WECHAT_APPID`): the first is the default.
    pub apps: Apps,
    pub secret_id: String,
    pub table: String,
    pub session_ttl_seconds: i64,
    pub api_base: String,
    /// `SINGLE_SESSION`: one active session per openid, default true.
    pub single_session: bool,
    pub login_log: LoginLogConfig,
    pub refresh: RefreshSettings,
    /// JWT mode; `None` without `SIGNING_KEY_SECRET_ID`.
    pub signing: Option<SigningConfig>,
    /// `RISK_CONTROL`, `RISK_REJECT_RANK`.
    pub risk: RiskPolicy,
}

impl LoginConfig {
    pub fn from_env(env: &impl Lookup) -> Result<Self, ConfigError> {
        let session_ttl_seconds = session_ttl(env)?;
        let api_base = api_base(env)?;
        let single_session = flag(env, "SINGLE_SESSION", true)?;
        Ok(Self {
            single_session,
            login_log: LoginLogConfig::from_env(env)?,
            refresh: refresh_settings(env)?,
            signing: SigningConfig::from_env(env)?,
            risk: risk_policy(env)?,
            apps: required_apps(env)?,
            secret_id: required(env, "WECHAT_SECRET_ID")?,
            table: required(env, "SESSION_TABLE")?,
            session_ttl_seconds,
            api_base,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptPhoneConfig {
    pub apps: Apps,
    pub table: String,
    /// `None` when `WATERMARK_MAX_AGE_SECONDS` is 0 (the check is off).
    pub watermark_max_age_seconds: Option<u64>,
    /// Phone by code; `None` without `WECHAT_SECRET_ID`.
    pub access_token: Option<AccessTokenConfig>,
    /// `BIND_PHONE`: store the number on the account, default true.
    pub bind_phone: bool,
    pub jwt: Option<JwtSettings>,
}

impl DecryptPhoneConfig {
    pub fn from_env(env: &impl Lookup) -> Result<Self, ConfigError> {
        let max_age = match optional(env, "WATERMARK_MAX_AGE_SECONDS") {
            None => DEFAULT_WATERMARK_MAX_AGE_SECONDS,
            Some(text) => text.parse::<u64>().map_err(|_| ConfigError::Invalid {
                name: "WATERMARK_MAX_AGE_SECONDS",
                reason: "must be a whole number of seconds (0 turns the check off)",
            })?,
        };
        let apps = required_apps(env)?;
        Ok(Self {
            access_token: AccessTokenConfig::for_apps(env, &apps)?,
            apps,
            table: required(env, "SESSION_TABLE")?,
            watermark_max_age_seconds: (max_age > 0).then_some(max_age),
            bind_phone: flag(env, "BIND_PHONE", true)?,
            jwt: jwt_settings(env)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSessionConfig {
    pub table: String,
    /// The apps whose sessions it serves; `None`: every session, its app as stored.
    pub apps: Option<Apps>,
    /// `?verify=wechat`; `None` without the apps and `WECHAT_SECRET_ID`.
    pub access_token: Option<AccessTokenConfig>,
    pub login_log: LoginLogConfig,
    pub jwt: Option<JwtSettings>,
}

impl CheckSessionConfig {
    pub fn from_env(env: &impl Lookup) -> Result<Self, ConfigError> {
        let apps = optional_apps(env)?;
        let secret = optional(env, "WECHAT_SECRET_ID");
        // The one-app shorthand keeps its rule: with its secret, or not at all.
        if optional(env, "WECHAT_APPID").is_some() && secret.is_none() {
            return Err(ConfigError::Missing("WECHAT_SECRET_ID"));
        }
        let access_token = match (&apps, secret) {
            (Some(apps), Some(_)) => AccessTokenConfig::for_apps(env, apps)?,
            (None, Some(_)) => return Err(ConfigError::Missing("WECHAT_APPS")),
            (_, None) => None,
        };
        Ok(Self {
            table: required(env, "SESSION_TABLE")?,
            apps,
            access_token,
            login_log: LoginLogConfig::from_env(env)?,
            jwt: jwt_settings(env)?,
        })
    }
}

/// The authorizer needs the table only: never the appsecret, never WeChat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    pub table: String,
    pub jwt: Option<JwtSettings>,
}

impl AuthorizerConfig {
    pub fn from_env(env: &impl Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table: required(env, "SESSION_TABLE")?,
            jwt: jwt_settings(env)?,
        })
    }
}

/// The rotation function: the signing key's secret is in its event; it
/// publishes public keys in the session table, and keeps them published as
/// long as login's `SIGNING_KEY_LEAD_SECONDS` and `SESSION_TTL_SECONDS` say a
/// token signed with them may live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationConfig {
    pub table: String,
    /// `SIGNING_KEY_SECRET_ID`: when set, events for any other secret fail.
    pub secret_id: Option<String>,
    pub lifetimes: KeyLifetimes,
}

impl RotationConfig {
    pub fn from_env(env: &impl Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table: required(env, "SESSION_TABLE")?,
            secret_id: optional(env, "SIGNING_KEY_SECRET_ID"),
            lifetimes: KeyLifetimes {
                lead_seconds: lead_seconds(env)?,
                session_ttl_seconds: session_ttl(env)?,
            },
        })
    }
}

/// `cargo run -p wxauth-local`, read by the same rules as the functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// `PORT`, 3000 by default.
    pub port: u16,
    pub session_ttl_seconds: i64,
    pub single_session: bool,
    /// `WECHAT_APPS` (or `WECHAT_APPID`); `None`: the simulator's own apps.
    pub apps: Option<Apps>,
    /// `WECHAT_APPSECRET` (the appsecret itself, or `{"appsecrets": ..}`,
    /// locally): the real WeChat at `api_base`; `None`: the simulator.
    pub wechat: Option<LocalWeChatConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalWeChatConfig {
    pub apps: Apps,
    pub appsecret: String,
    pub api_base: String,
}

impl LocalConfig {
    pub fn from_env(env: &impl Lookup) -> Result<Self, ConfigError> {
        let port = match optional(env, "PORT") {
            None => 3000,
            Some(text) => text.parse().map_err(|_| ConfigError::Invalid {
                name: "PORT",
                reason: "must be a port number",
            })?,
        };
        let apps = optional_apps(env)?;
        let wechat = match (&apps, optional(env, "WECHAT_APPSECRET")) {
            (Some(apps), Some(appsecret)) => Some(LocalWeChatConfig {
                apps: apps.clone(),
                appsecret,
                api_base: api_base(env)?,
            }),
            (None, Some(_)) => return Err(ConfigError::Missing("WECHAT_APPS")),
            // Only WECHAT_APPID names one app of the real WeChat; a list of
            // apps may be the simulator's.
            (Some(_), None) if optional(env, "WECHAT_APPID").is_some() => {
                return Err(ConfigError::Missing("WECHAT_APPSECRET"));
            }
            (_, None) => None,
        };
        Ok(Self {
            port,
            session_ttl_seconds: session_ttl(env)?,
            single_session: flag(env, "SINGLE_SESSION", true)?,
            apps,
            wechat,
        })
    }
}
