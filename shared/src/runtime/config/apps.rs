//! The apps a function serves (`WECHAT_APPS`, or `WECHAT_APPID` for one
//! mini-program), the access tokens of their mini-programs, and risk
//! control at sign-up (`RISK_CONTROL`, `RISK_REJECT_RANK`).

use super::{ConfigError, Lookup, api_base, optional};
use crate::domain::app::{AppId, Apps, AppsError};
use crate::domain::risk::{DEFAULT_REJECT_RANK, RiskControl, RiskPolicy};

/// `WECHAT_APPS`, or `WECHAT_APPID` as its one-app shorthand; `None` when
/// neither is set. Both set is a mistake, named.
pub fn optional_apps(env: &impl Lookup) -> Result<Option<Apps>, ConfigError> {
    let parsed = |name: &'static str, list: &str| {
        Apps::parse(list).map_err(|error| ConfigError::Apps { name, error })
    };
    match (optional(env, "WECHAT_APPS"), optional(env, "WECHAT_APPID")) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            name: "WECHAT_APPS",
            reason: "is set together with WECHAT_APPID: set WECHAT_APPS alone (WECHAT_APPID=wx… is WECHAT_APPS=wx…)",
        }),
        (Some(list), None) => parsed("WECHAT_APPS", &list).map(Some),
        (None, Some(appid)) => {
            let id = AppId::parse(&appid).ok_or(ConfigError::Apps {
                name: "WECHAT_APPID",
                error: AppsError::NotAnAppid(appid),
            })?;
            Ok(Some(Apps::single(id)))
        }
        (None, None) => Ok(None),
    }
}

/// The apps, for a function that cannot do without them.
pub fn required_apps(env: &impl Lookup) -> Result<Apps, ConfigError> {
    optional_apps(env)?.ok_or(ConfigError::Missing("WECHAT_APPS"))
}

/// What a function needs to get its mini-programs' access tokens (phone by
/// code, `?verify=wechat`, the risk rank): the secret holding the
/// appsecrets, and WeChat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenConfig {
    /// The app a single appsecret in the secret belongs to.
    pub default_app: AppId,
    pub secret_id: String,
    pub api_base: String,
}

impl AccessTokenConfig {
    /// On when `WECHAT_SECRET_ID` is set, for a function with `apps`.
    pub fn for_apps(env: &impl Lookup, apps: &Apps) -> Result<Option<Self>, ConfigError> {
        let api_base = api_base(env)?;
        Ok(optional(env, "WECHAT_SECRET_ID").map(|secret_id| Self {
            default_app: apps.default_app().id.clone(),
            secret_id,
            api_base,
        }))
    }
}

/// `RISK_CONTROL` (`off`, `record`, `enforce`) and `RISK_REJECT_RANK` (1 to
/// 4, checked whatever `RISK_CONTROL` says).
pub fn risk_policy(env: &impl Lookup) -> Result<RiskPolicy, ConfigError> {
    let control = match optional(env, "RISK_CONTROL") {
        None => RiskControl::Off,
        Some(text) => RiskControl::parse(&text).ok_or(ConfigError::Invalid {
            name: "RISK_CONTROL",
            reason: "must be off, record or enforce",
        })?,
    };
    let reject_rank = match optional(env, "RISK_REJECT_RANK") {
        None => DEFAULT_REJECT_RANK,
        Some(text) => text
            .parse::<u8>()
            .ok()
            .filter(|rank| (1..=4).contains(rank))
            .ok_or(ConfigError::Invalid {
                name: "RISK_REJECT_RANK",
                reason: "must be a whole number from 1 to 4",
            })?,
    };
    Ok(RiskPolicy {
        control,
        reject_rank,
    })
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

    const A: &str = "wx1111111111111111";

    #[test]
    fn wechat_appid_is_the_one_app_shorthand() {
        let one = optional_apps(&env(&[("WECHAT_APPID", A)]))
            .unwrap()
            .unwrap();
        assert_eq!(one, Apps::parse(A).unwrap());
        assert_eq!(optional_apps(&env(&[])), Ok(None));
        assert_eq!(
            required_apps(&env(&[])),
            Err(ConfigError::Missing("WECHAT_APPS"))
        );
    }

    #[test]
    fn each_mistake_names_its_variable() {
        let both = optional_apps(&env(&[("WECHAT_APPS", A), ("WECHAT_APPID", A)]));
        assert!(
            matches!(
                both,
                Err(ConfigError::Invalid {
                    name: "WECHAT_APPS",
                    ..
                })
            ),
            "{both:?}"
        );
        for (pairs, name) in [
            (vec![("WECHAT_APPID", "wx1")], "WECHAT_APPID"),
            (vec![("WECHAT_APPS", "wx1")], "WECHAT_APPS"),
            (
                vec![("WECHAT_APPS", "wx1111111111111111:web")],
                "WECHAT_APPS",
            ),
            (
                vec![("WECHAT_APPS", "wx1111111111111111,wx1111111111111111")],
                "WECHAT_APPS",
            ),
        ] {
            let err = optional_apps(&env(&pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn risk_control_and_its_threshold() {
        assert_eq!(risk_policy(&env(&[])), Ok(RiskPolicy::default()));
        let enforce = risk_policy(&env(&[
            ("RISK_CONTROL", "enforce"),
            ("RISK_REJECT_RANK", "3"),
        ]));
        assert_eq!(
            enforce,
            Ok(RiskPolicy {
                control: RiskControl::Enforce,
                reject_rank: 3
            })
        );
        for (name, value) in [
            ("RISK_CONTROL", "on"),
            ("RISK_REJECT_RANK", "0"),
            ("RISK_REJECT_RANK", "5"),
            ("RISK_REJECT_RANK", "high"),
        ] {
            // The threshold is checked whatever RISK_CONTROL says.
            assert!(
                matches!(risk_policy(&env(&[(name, value)])), Err(ConfigError::Invalid { name: n, .. }) if n == name),
                "{name}={value}"
            );
        }
    }
}
