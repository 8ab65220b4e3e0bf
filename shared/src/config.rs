//! Each function's configuration, read from the environment once at start-up.

use crate::wechat::DEFAULT_API_BASE;

pub const DEFAULT_SESSION_TTL_SECONDS: i64 = 600;
pub const DEFAULT_WATERMARK_MAX_AGE_SECONDS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required environment variable {0}")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        reason: &'static str,
    },
}

/// Where variables come from: the process environment, or a map in tests.
pub trait Lookup {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Lookup for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

fn required(env: &impl Lookup, name: &'static str) -> Result<String, ConfigError> {
    env.var(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError::Missing(name))
}

fn optional(env: &impl Lookup, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn api_base(env: &impl Lookup) -> Result<String, ConfigError> {
    let api_base = optional(env, "WECHAT_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.into());
    if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
        return Err(ConfigError::Invalid {
            name: "WECHAT_API_BASE",
            reason: "must be an http:// or https:// URL",
        });
    }
    Ok(api_base)
}

/// What a function needs to get WeChat's access token (phone by code,
/// `?verify=wechat`). Optional there: without it the core routes still work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenConfig {
    pub appid: String,
    pub secret_id: String,
    pub api_base: String,
}

impl AccessTokenConfig {
    /// `None` unless both `WECHAT_APPID` and `WECHAT_SECRET_ID` are set.
    fn from_env(env: &impl Lookup) -> Result<Option<Self>, ConfigError> {
        let api_base = api_base(env)?;
        Ok(
            match (
                optional(env, "WECHAT_APPID"),
                optional(env, "WECHAT_SECRET_ID"),
            ) {
                (Some(appid), Some(secret_id)) => Some(Self {
                    appid,
                    secret_id,
                    api_base,
                }),
                _ => None,
            },
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginConfig {
    pub appid: String,
    pub secret_id: String,
    pub table: String,
    pub session_ttl_seconds: i64,
    pub api_base: String,
    /// `SINGLE_SESSION`: one active session per openid, default true.
    pub single_session: bool,
}

impl LoginConfig {
    pub fn from_env(env: &impl Lookup) -> Result<Self, ConfigError> {
        let session_ttl_seconds = match optional(env, "SESSION_TTL_SECONDS") {
            None => DEFAULT_SESSION_TTL_SECONDS,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|ttl| (1..=31_536_000).contains(ttl))
                .ok_or(ConfigError::Invalid {
                    name: "SESSION_TTL_SECONDS",
                    reason: "must be a whole number of seconds from 1 to 31536000",
                })?,
        };
        let api_base = api_base(env)?;
        let single_session = match optional(env, "SINGLE_SESSION").map(|v| v.to_ascii_lowercase()) {
            None => true,
            Some(v) if v == "true" || v == "1" => true,
            Some(v) if v == "false" || v == "0" => false,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "SINGLE_SESSION",
                    reason: "must be true or false",
                });
            }
        };
        Ok(Self {
            single_session,
            appid: required(env, "WECHAT_APPID")?,
            secret_id: required(env, "WECHAT_SECRET_ID")?,
            table: required(env, "SESSION_TABLE")?,
            session_ttl_seconds,
            api_base,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptPhoneConfig {
    pub appid: String,
    pub table: String,
    /// `None` when `WATERMARK_MAX_AGE_SECONDS` is 0 (the check is off).
    pub watermark_max_age_seconds: Option<u64>,
    /// Phone by code; `None` without `WECHAT_SECRET_ID`.
    pub access_token: Option<AccessTokenConfig>,
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
        Ok(Self {
            appid: required(env, "WECHAT_APPID")?,
            table: required(env, "SESSION_TABLE")?,
            watermark_max_age_seconds: (max_age > 0).then_some(max_age),
            access_token: AccessTokenConfig::from_env(env)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSessionConfig {
    pub table: String,
    /// `?verify=wechat`; `None` without `WECHAT_APPID` and `WECHAT_SECRET_ID`.
    pub access_token: Option<AccessTokenConfig>,
}

impl CheckSessionConfig {
    pub fn from_env(env: &impl Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table: required(env, "SESSION_TABLE")?,
            access_token: AccessTokenConfig::from_env(env)?,
        })
    }
}

/// The authorizer needs the table only: never the appsecret, never WeChat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    pub table: String,
}

impl AuthorizerConfig {
    pub fn from_env(env: &impl Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table: required(env, "SESSION_TABLE")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Lookup {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("WECHAT_APPID", "wx1"),
        ("WECHAT_SECRET_ID", "arn:secret"),
        ("SESSION_TABLE", "sessions"),
    ];

    #[test]
    fn login_defaults() {
        let config = LoginConfig::from_env(&env(FULL)).unwrap();
        assert_eq!(config.session_ttl_seconds, 600);
        assert_eq!(config.api_base, "https://api.weixin.qq.com");
    }

    #[test]
    fn each_missing_variable_is_named() {
        for missing in ["WECHAT_APPID", "WECHAT_SECRET_ID", "SESSION_TABLE"] {
            let pairs: Vec<_> = FULL
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = LoginConfig::from_env(&env(&pairs)).unwrap_err();
            assert_eq!(err, ConfigError::Missing(missing));
            assert!(err.to_string().contains(missing));
        }
        let blank = LoginConfig::from_env(&env(&[
            ("WECHAT_APPID", " "),
            ("WECHAT_SECRET_ID", "s"),
            ("SESSION_TABLE", "t"),
        ]));
        assert_eq!(blank, Err(ConfigError::Missing("WECHAT_APPID")));
        assert_eq!(
            DecryptPhoneConfig::from_env(&env(&[("SESSION_TABLE", "t")])),
            Err(ConfigError::Missing("WECHAT_APPID"))
        );
        assert_eq!(
            CheckSessionConfig::from_env(&env(&[])),
            Err(ConfigError::Missing("SESSION_TABLE"))
        );
    }

    #[test]
    fn access_token_settings_are_optional_but_complete() {
        let core = CheckSessionConfig::from_env(&env(&[("SESSION_TABLE", "t")])).unwrap();
        assert_eq!(core.access_token, None);
        let half =
            CheckSessionConfig::from_env(&env(&[("SESSION_TABLE", "t"), ("WECHAT_APPID", "wx1")]))
                .unwrap();
        assert_eq!(half.access_token, None);
        let full = DecryptPhoneConfig::from_env(&env(FULL)).unwrap();
        assert_eq!(
            full.access_token,
            Some(AccessTokenConfig {
                appid: "wx1".into(),
                secret_id: "arn:secret".into(),
                api_base: "https://api.weixin.qq.com".into(),
            })
        );
    }

    #[test]
    fn watermark_max_age() {
        let base = [("WECHAT_APPID", "wx1"), ("SESSION_TABLE", "t")];
        let with = |value: Option<&str>| {
            let mut pairs = base.to_vec();
            if let Some(v) = value {
                pairs.push(("WATERMARK_MAX_AGE_SECONDS", v));
            }
            DecryptPhoneConfig::from_env(&env(&pairs)).map(|c| c.watermark_max_age_seconds)
        };
        assert_eq!(with(None), Ok(Some(300)));
        assert_eq!(with(Some("0")), Ok(None));
        assert_eq!(with(Some("60")), Ok(Some(60)));
        assert!(with(Some("-1")).is_err());
    }

    #[test]
    fn bad_optional_values_are_refused() {
        for ttl in ["0", "-5", "ten", "99999999999"] {
            let mut pairs = FULL.to_vec();
            pairs.push(("SESSION_TTL_SECONDS", ttl));
            assert!(matches!(
                LoginConfig::from_env(&env(&pairs)),
                Err(ConfigError::Invalid {
                    name: "SESSION_TTL_SECONDS",
                    ..
                })
            ));
        }
        let mut pairs = FULL.to_vec();
        pairs.push(("WECHAT_API_BASE", "api.weixin.qq.com"));
        assert!(LoginConfig::from_env(&env(&pairs)).is_err());
    }
}
