//! Accounts: one kept per WeChat user, created by the first login.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

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

/// One WeChat user, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: UserId,
    pub openid: String,
    pub unionid: Option<String>,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub last_login_at: i64,
    pub status: AccountStatus,
    pub phone: Option<BoundPhone>,
}

/// `GET /account`'s answer and, with `status`, the operator tool's `show`.
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
    pub created_at: i64,
    pub last_login_at: i64,
}

impl Account {
    /// What the user sees of their own account (`GET /account`).
    pub fn view(&self) -> AccountView<'_> {
        let phone = self.phone.as_ref();
        AccountView {
            user_id: &self.user_id,
            openid: &self.openid,
            unionid: self.unionid.as_deref(),
            status: None,
            phone_number: phone.map(|p| p.number.phone_number.as_str()),
            pure_phone_number: phone.map(|p| p.number.pure_phone_number.as_str()),
            country_code: phone.map(|p| p.number.country_code.as_str()),
            phone_bound_at: None,
            created_at: self.created_at,
            last_login_at: self.last_login_at,
        }
    }

    /// What the operator sees (`wxauth-admin show`): the view, the status and
    /// when the phone was bound.
    pub fn operator_view(&self) -> AccountView<'_> {
        AccountView {
            status: Some(self.status),
            phone_bound_at: self.phone.as_ref().map(|p| p.bound_at),
            ..self.view()
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
        let account = Account {
            user_id: UserId::parse("u_AAAAAAAAAAAAAAAAAAAAAA").unwrap(),
            openid: "o1".into(),
            unionid: None,
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
        let user = serde_json::to_value(account.view()).unwrap();
        assert_eq!(
            user,
            serde_json::json!({"userId": "u_AAAAAAAAAAAAAAAAAAAAAA", "openid": "o1",
                "phoneNumber": "+86 13800138000", "purePhoneNumber": "13800138000",
                "countryCode": "86", "createdAt": 10, "lastLoginAt": 20})
        );
        let operator = serde_json::to_value(account.operator_view()).unwrap();
        assert_eq!(operator["status"], "disabled");
        assert_eq!(operator["phoneBoundAt"], 15);
    }
}
