//! Each function's configuration, read from the environment once at start-up.

use crate::domain::jwt::{DEFAULT_AUDIENCE, JwtSettings};
use crate::domain::refresh::RefreshSettings;
use crate::domain::wechat::DEFAULT_API_BASE;

pub const DEFAULT_SESSION_TTL_SECONDS: i64 = 600;
pub const DEFAULT_WATERMARK_MAX_AGE_SECONDS: u64 = 300;

mod apps;
mod functions;
pub use apps::{AccessTokenConfig, optional_apps, required_apps, risk_policy};
pub use functions::{
    AuthorizerConfig, CheckSessionConfig, DecryptPhoneConfig, LocalConfig, LocalWeChatConfig,
    LoginConfig, RotationConfig,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required environment variable {0}")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        reason: &'static str,
    },
    #[error("environment variable {name} is invalid: {error}")]
    Apps {
        name: &'static str,
        error: crate::domain::app::AppsError,
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

pub(super) fn required(env: &impl Lookup, name: &'static str) -> Result<String, ConfigError> {
    env.var(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError::Missing(name))
}

pub(super) fn optional(env: &impl Lookup, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `WECHAT_API_BASE`: https, or http only to a loopback host (a stand-in on
/// this machine): the appsecret travels in these requests and must never cross
/// a network in clear text.
pub(super) fn api_base(env: &impl Lookup) -> Result<String, ConfigError> {
    let api_base = optional(env, "WECHAT_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.into());
    let invalid = |reason| ConfigError::Invalid {
        name: "WECHAT_API_BASE",
        reason,
    };
    let url = url::Url::parse(&api_base).map_err(|_| invalid("must be an https:// URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(invalid("must be an https:// URL with a host")),
    };
    match url.scheme() {
        "https" => Ok(api_base),
        "http" if loopback => Ok(api_base),
        "http" => Err(invalid(
            "must be https:// (http:// only for a loopback host such as 127.0.0.1, localhost or [::1]): the appsecret travels in these requests",
        )),
        _ => Err(invalid("must be an https:// URL")),
    }
}

/// A boolean variable: `true`/`false` (or `1`/`0`), any case.
pub(super) fn flag(
    env: &impl Lookup,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match optional(env, name)
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(ConfigError::Invalid {
            name,
            reason: "must be true or false",
        }),
    }
}

/// `SESSION_TTL_SECONDS`: 1 s to a year, 600 by default.
pub(super) fn session_ttl(env: &impl Lookup) -> Result<i64, ConfigError> {
    match optional(env, "SESSION_TTL_SECONDS") {
        None => Ok(DEFAULT_SESSION_TTL_SECONDS),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|ttl| (1..=31_536_000).contains(ttl))
            .ok_or(ConfigError::Invalid {
                name: "SESSION_TTL_SECONDS",
                reason: "must be a whole number of seconds from 1 to 31536000",
            }),
    }
}

/// A whole number in `range`, or `default` when unset.
pub(super) fn number(
    env: &impl Lookup,
    name: &'static str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    reason: &'static str,
) -> Result<i64, ConfigError> {
    match optional(env, name) {
        None => Ok(default),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|value| range.contains(value))
            .ok_or(ConfigError::Invalid { name, reason }),
    }
}

/// `REFRESH_TTL_SECONDS` (0 turns refresh tokens off) and
/// `REFRESH_REUSE_GRACE_SECONDS`.
pub fn refresh_settings(env: &impl Lookup) -> Result<RefreshSettings, ConfigError> {
    let defaults = RefreshSettings::default();
    Ok(RefreshSettings {
        ttl_seconds: number(
            env,
            "REFRESH_TTL_SECONDS",
            defaults.ttl_seconds,
            0..=31_536_000,
            "must be a whole number of seconds from 0 (off) to 31536000",
        )?,
        grace_seconds: number(
            env,
            "REFRESH_REUSE_GRACE_SECONDS",
            defaults.grace_seconds,
            0..=3600,
            "must be a whole number of seconds from 0 to 3600",
        )?,
    })
}

/// `ISSUER` (an https URL, no trailing slash) and `AUDIENCE`: how a function
/// that checks tokens knows a JWT is ours. No issuer: JWTs are refused.
pub fn jwt_settings(env: &impl Lookup) -> Result<Option<JwtSettings>, ConfigError> {
    let Some(issuer) = optional(env, "ISSUER") else {
        return Ok(None);
    };
    let invalid = |reason| ConfigError::Invalid {
        name: "ISSUER",
        reason,
    };
    let url =
        url::Url::parse(&issuer).map_err(|_| invalid("must be the API's https:// base URL"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(invalid("must be the API's https:// base URL"));
    }
    if issuer.ends_with('/') || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "must be a base URL with no trailing slash, query or fragment",
        ));
    }
    let audience = optional(env, "AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
    Ok(Some(JwtSettings { issuer, audience }))
}

/// JWT mode for `login`: `SIGNING_KEY_SECRET_ID` (needs `ISSUER`),
/// `SIGNING_KEY_LEAD_SECONDS` and `SIGNING_KEY_REREAD_SECONDS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningConfig {
    pub secret_id: String,
    pub jwt: JwtSettings,
    pub lead_seconds: i64,
    /// How often login re-reads the secret: 300 s at most (the contract's
    /// "at least every 5 minutes"), sooner if the operator asks.
    pub reread_seconds: i64,
}

impl SigningConfig {
    pub fn from_env(env: &impl Lookup) -> Result<Option<Self>, ConfigError> {
        let jwt = jwt_settings(env)?;
        let Some(secret_id) = optional(env, "SIGNING_KEY_SECRET_ID") else {
            return Ok(None);
        };
        let jwt = jwt.ok_or(ConfigError::Invalid {
            name: "SIGNING_KEY_SECRET_ID",
            reason: "needs ISSUER, the API's https:// base URL (the JWTs' iss)",
        })?;
        let lead_seconds = lead_seconds(env)?;
        let reread_seconds = number(
            env,
            "SIGNING_KEY_REREAD_SECONDS",
            DEFAULT_SIGNING_KEY_REREAD_SECONDS,
            0..=DEFAULT_SIGNING_KEY_REREAD_SECONDS,
            "must be a whole number of seconds from 0 (every request) to 300",
        )?;
        Ok(Some(Self {
            secret_id,
            jwt,
            lead_seconds,
            reread_seconds,
        }))
    }
}

/// API Gateway's JWT authorizer caches a key set for up to 2 hours; our own
/// JWKS answer may be cached 300 s (`max-age`) and a checker keeps its copy 300 s
/// on top: a new key signs only once every one of them has it.
pub const DEFAULT_SIGNING_KEY_LEAD_SECONDS: i64 = 7200 + 300 + 300;
pub const DEFAULT_SIGNING_KEY_REREAD_SECONDS: i64 = 300;

/// `SIGNING_KEY_LEAD_SECONDS`: 0 to 30 days.
pub(super) fn lead_seconds(env: &impl Lookup) -> Result<i64, ConfigError> {
    number(
        env,
        "SIGNING_KEY_LEAD_SECONDS",
        DEFAULT_SIGNING_KEY_LEAD_SECONDS,
        0..=2_592_000,
        "must be a whole number of seconds from 0 to 2592000",
    )
}

/// The login log: `LOGIN_LOG_TABLE` (none: no log) and
/// `LOGIN_LOG_RETENTION_DAYS` (1 to 3650, 180 by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLogConfig {
    pub table: Option<String>,
    pub retention_days: i64,
}

impl LoginLogConfig {
    pub fn from_env(env: &impl Lookup) -> Result<Self, ConfigError> {
        let retention_days = match optional(env, "LOGIN_LOG_RETENTION_DAYS") {
            None => crate::domain::login_log::DEFAULT_RETENTION_DAYS,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|days| (1..=3650).contains(days))
                .ok_or(ConfigError::Invalid {
                    name: "LOGIN_LOG_RETENTION_DAYS",
                    reason: "must be a whole number of days from 1 to 3650",
                })?,
        };
        Ok(Self {
            table: optional(env, "LOGIN_LOG_TABLE"),
            retention_days,
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
        ("WECHAT_APPID", "wx1111111111111111"),
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
        // Without WECHAT_APPID (or WECHAT_APPS) the apps are what is missing.
        for (left_out, missing) in [
            ("WECHAT_APPID", "WECHAT_APPS"),
            ("WECHAT_SECRET_ID", "WECHAT_SECRET_ID"),
            ("SESSION_TABLE", "SESSION_TABLE"),
        ] {
            let pairs: Vec<_> = FULL
                .iter()
                .copied()
                .filter(|(k, _)| *k != left_out)
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
        assert_eq!(blank, Err(ConfigError::Missing("WECHAT_APPS")));
        assert_eq!(
            DecryptPhoneConfig::from_env(&env(&[("SESSION_TABLE", "t")])),
            Err(ConfigError::Missing("WECHAT_APPS"))
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
        // Half of the pair is a start-up error naming the other half.
        for (set, missing) in [
            (("WECHAT_APPID", "wx1111111111111111"), "WECHAT_SECRET_ID"),
            (("WECHAT_SECRET_ID", "arn:secret"), "WECHAT_APPS"),
        ] {
            let half = CheckSessionConfig::from_env(&env(&[("SESSION_TABLE", "t"), set]));
            assert_eq!(half, Err(ConfigError::Missing(missing)));
        }
        // decrypt-phone needs WECHAT_APPID anyway: the secret alone switches it on.
        let core = DecryptPhoneConfig::from_env(&env(&[
            ("SESSION_TABLE", "t"),
            ("WECHAT_APPID", "wx1111111111111111"),
        ]));
        assert_eq!(core.unwrap().access_token, None);
        let full = DecryptPhoneConfig::from_env(&env(FULL)).unwrap();
        assert_eq!(
            full.access_token,
            Some(AccessTokenConfig {
                default_app: crate::domain::app::AppId::parse("wx1111111111111111").unwrap(),
                secret_id: "arn:secret".into(),
                api_base: "https://api.weixin.qq.com".into(),
            })
        );
    }

    #[test]
    fn watermark_max_age() {
        let base = [
            ("WECHAT_APPID", "wx1111111111111111"),
            ("SESSION_TABLE", "t"),
        ];
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
    fn the_login_log_and_phone_binding() {
        let base = [
            ("WECHAT_APPID", "wx1111111111111111"),
            ("SESSION_TABLE", "t"),
        ];
        let phone = |value: Option<&str>| {
            let mut pairs = base.to_vec();
            pairs.extend(value.map(|v| ("BIND_PHONE", v)));
            DecryptPhoneConfig::from_env(&env(&pairs)).map(|c| c.bind_phone)
        };
        assert_eq!(phone(None), Ok(true));
        assert_eq!(phone(Some("false")), Ok(false));
        assert!(phone(Some("maybe")).is_err());

        let log = |pairs: &[(&str, &str)]| LoginLogConfig::from_env(&env(pairs));
        assert_eq!(
            log(&[]),
            Ok(LoginLogConfig {
                table: None,
                retention_days: 180
            })
        );
        assert_eq!(
            log(&[
                ("LOGIN_LOG_TABLE", "log"),
                ("LOGIN_LOG_RETENTION_DAYS", "365")
            ]),
            Ok(LoginLogConfig {
                table: Some("log".into()),
                retention_days: 365
            })
        );
        for bad in ["0", "-1", "3651", "half a year"] {
            let err = log(&[("LOGIN_LOG_RETENTION_DAYS", bad)]).unwrap_err();
            assert!(
                err.to_string().contains("LOGIN_LOG_RETENTION_DAYS"),
                "{bad}"
            );
        }
        let check = CheckSessionConfig::from_env(&env(&[
            ("SESSION_TABLE", "t"),
            ("LOGIN_LOG_TABLE", "log"),
        ]))
        .unwrap();
        assert_eq!(check.login_log.table.as_deref(), Some("log"));
        assert_eq!(check.apps, None);
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
        for single in ["yes", "2", "off"] {
            let mut pairs = FULL.to_vec();
            pairs.push(("SINGLE_SESSION", single));
            assert!(LoginConfig::from_env(&env(&pairs)).is_err(), "{single}");
        }
    }

    #[test]
    fn the_wechat_base_is_https_or_loopback_http() {
        let base = |value: &str| {
            let mut pairs = FULL.to_vec();
            pairs.push(("WECHAT_API_BASE", value));
            LoginConfig::from_env(&env(&pairs)).map(|c| c.api_base)
        };
        for good in [
            "https://api.weixin.qq.com",
            "https://wechat.example.cn:8443/prefix",
            "http://127.0.0.1:9000",
            "http://127.8.9.10",
            "http://localhost:3000",
            "http://LOCALHOST",
            "http://[::1]:8080",
        ] {
            assert_eq!(base(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "http://api.weixin.qq.com",
            "http://10.0.0.1",
            "http://192.168.1.2:8080",
            "http://localhost.example.com",
            "http://[::2]",
            "ftp://127.0.0.1",
            "api.weixin.qq.com",
            "https://",
        ] {
            assert!(
                matches!(
                    base(bad),
                    Err(ConfigError::Invalid {
                        name: "WECHAT_API_BASE",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_local_server_reads_the_same_rules() {
        let local = LocalConfig::from_env(&env(&[])).unwrap();
        assert_eq!(
            local,
            LocalConfig {
                port: 3000,
                session_ttl_seconds: 600,
                single_session: true,
                apps: None,
                wechat: None
            }
        );
        let off =
            LocalConfig::from_env(&env(&[("SINGLE_SESSION", "0"), ("PORT", "3100")])).unwrap();
        assert_eq!((off.single_session, off.port), (false, 3100));
        assert_eq!(
            LocalConfig::from_env(&env(&[("WECHAT_APPID", "wx1111111111111111")])),
            Err(ConfigError::Missing("WECHAT_APPSECRET"))
        );
        assert!(LocalConfig::from_env(&env(&[("SESSION_TTL_SECONDS", "0")])).is_err());
        let real = LocalConfig::from_env(&env(&[
            ("WECHAT_APPID", "wx1111111111111111"),
            ("WECHAT_APPSECRET", "s"),
            ("WECHAT_API_BASE", "http://example.com"),
        ]));
        assert!(matches!(
            real,
            Err(ConfigError::Invalid {
                name: "WECHAT_API_BASE",
                ..
            })
        ));
    }
}
