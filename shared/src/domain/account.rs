//! Accounts: one kept per WeChat user, created by the first login.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::domain::app::AppId;
use crate::domain::identity::{AppEntry, LinkedIdentity};
use crate::domain::phone::PhoneNumber;

/// A user's id: `u_` and 22 base64url characters (128 bits from the OS CSPRNG).
/// Never derived from the openid, so it tells nothing about it, and never
/// reused: a deleted account's next login gets a new one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

const USER_ID_PREFIX: &str = "u_";
const USER_ID_RANDOM_CHARS: usize = 22;

impl UserId {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(Self(format!(
            "{USER_ID_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// A userId as issued, or `None`: what the operator tool and the stores
    /// accept from outside.
    pub fn parse(text: &str) -> Option<Self> {
        let random = text.strip_prefix(USER_ID_PREFIX)?;
        let well_formed = random.len() == USER_ID_RANDOM_CHARS
            && random
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    /// The operator disabled it: no login, no refresh, its sessions revoked.
    Disabled,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// A phone number bound to an account by `POST /phone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundPhone {
    pub number: PhoneNumber,
    /// Epoch seconds.
    pub bound_at: i64,
}

/// One person, as kept: every identity WeChat gave them in the team's apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: UserId,
    /// Oldest first; never empty. The first is the identity that created it.
    pub identities: Vec<LinkedIdentity>,
    pub unionid: Option<String>,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub last_login_at: i64,
    pub status: AccountStatus,
    pub phone: Option<BoundPhone>,
    /// WeChat's risk rank at sign-up (0 to 4), when `RISK_CONTROL` asked.
    pub risk_rank: Option<u8>,
}

/// `GET /account`'s answer and, with `status` and the rest, the operator
/// tool's `show`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView<'a> {
    pub user_id: &'a UserId,
    pub openid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unionid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AccountStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pure_phone_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_bound_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_rank: Option<u8>,
    pub created_at: i64,
    pub last_login_at: i64,
    pub apps: Vec<AppEntry>,
}

impl Account {
    /// The identities as apps, oldest first: one written before several
    /// apps is `default_app`'s (left out when there is none to name).
    pub fn apps(&self, default_app: Option<&AppId>) -> Vec<AppEntry> {
        let mut apps: Vec<AppEntry> = self
            .identities
            .iter()
            .filter_map(|identity| {
                Some(AppEntry {
                    appid: identity.appid.clone().or_else(|| default_app.cloned())?,
                    openid: identity.openid.clone(),
                    linked_at: identity.linked_at,
                })
            })
            .collect();
        // Oldest first; identities linked within one second in a fixed order.
        apps.sort_by(|a, b| (a.linked_at, &a.appid).cmp(&(b.linked_at, &b.appid)));
        apps
    }

    /// The openid the account began with.
    pub fn first_openid(&self) -> &str {
        self.identities
            .first()
            .map(|identity| identity.openid.as_str())
            .unwrap_or_default()
    }

    /// What the user sees of their own account (`GET /account`): `openid`
    /// is the calling session's app's.
    pub fn view<'a>(&'a self, openid: &'a str, default_app: Option<&AppId>) -> AccountView<'a> {
        let phone = self.phone.as_ref();
        AccountView {
            user_id: &self.user_id,
            openid,
            unionid: self.unionid.as_deref(),
            status: None,
            phone_number: phone.map(|p| p.number.phone_number.as_str()),
            pure_phone_number: phone.map(|p| p.number.pure_phone_number.as_str()),
            country_code: phone.map(|p| p.number.country_code.as_str()),
            phone_bound_at: None,
            risk_rank: None,
            created_at: self.created_at,
            last_login_at: self.last_login_at,
            apps: self.apps(default_app),
        }
    }

    /// What the operator sees (`wxauth-admin show`): the view from the first
    /// identity, the status, when the phone was bound, the risk rank.
    pub fn operator_view(&self, default_app: Option<&AppId>) -> AccountView<'_> {
        AccountView {
            status: Some(self.status),
            phone_bound_at: self.phone.as_ref().map(|p| p.bound_at),
            risk_rank: self.risk_rank,
            ..self.view(self.first_openid(), default_app)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_random_and_parse_only_as_issued() {
        let a = UserId::generate().unwrap();
        let b = UserId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 24);
        assert!(a.as_str().starts_with("u_"));
        assert_eq!(UserId::parse(a.as_str()), Some(a.clone()));
        for bad in [
            "",
            "u_",
            "u_short",
            "x_AAAAAAAAAAAAAAAAAAAAAA",
            "u_AAAAAAAAAAAAAAAAAAAAA=",
            "u_AAAAAAAAAAAAAAAAAAAAAAA",
            "u_AAAAAAAAAAAAAAAAAAAA/A",
        ] {
            assert_eq!(UserId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_views_show_what_each_reader_may_see() {
        let app = AppId::parse("wx1111111111111111").unwrap();
        let account = Account {
            user_id: UserId::parse("u_AAAAAAAAAAAAAAAAAAAAAA").unwrap(),
            identities: vec![
                LinkedIdentity {
                    appid: None,
                    openid: "o1".into(),
                    linked_at: 10,
                },
                LinkedIdentity {
                    appid: Some(AppId::parse("wx2222222222222222").unwrap()),
                    openid: "o2".into(),
                    linked_at: 12,
                },
            ],
            unionid: None,
            risk_rank: Some(1),
            created_at: 10,
            last_login_at: 20,
            status: AccountStatus::Disabled,
            phone: Some(BoundPhone {
                number: PhoneNumber {
                    phone_number: "+86 13800138000".into(),
                    pure_phone_number: "13800138000".into(),
                    country_code: "86".into(),
                },
                bound_at: 15,
            }),
        };
        let user = serde_json::to_value(account.view("o2", Some(&app))).unwrap();
        assert_eq!(
            user,
            serde_json::json!({"userId": "u_AAAAAAAAAAAAAAAAAAAAAA", "openid": "o2",
            "phoneNumber": "+86 13800138000", "purePhoneNumber": "13800138000",
            "countryCode": "86", "createdAt": 10, "lastLoginAt": 20,
            "apps": [
                {"appid": "wx1111111111111111", "openid": "o1", "linkedAt": 10},
                {"appid": "wx2222222222222222", "openid": "o2", "linkedAt": 12}
            ]})
        );
        let operator = serde_json::to_value(account.operator_view(Some(&app))).unwrap();
        assert_eq!(operator["status"], "disabled");
        assert_eq!(operator["phoneBoundAt"], 15);
        assert_eq!(operator["riskRank"], 1);
        assert_eq!(operator["openid"], "o1");
        // Without a default app to name, an identity from before several apps is left out.
        let unnamed = serde_json::to_value(account.operator_view(None)).unwrap();
        assert_eq!(unnamed["apps"].as_array().unwrap().len(), 1);
    }
}
