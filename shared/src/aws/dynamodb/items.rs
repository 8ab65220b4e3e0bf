//! The table's item shapes: keys and their prefixes, attribute values, and
//! each item as read and written (sessions, accounts, refresh tokens, log
//! entries, an account's lists of what its refresh families own). Every
//! operation file uses these; none of them imports another.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};

use super::DynamoSessionStore;
use crate::domain::account::{Account, AccountStatus, BoundPhone, UserId};
use crate::domain::login_log::{LogEntry, LogEvent, Origin};
use crate::domain::phone::PhoneNumber;
use crate::domain::redact::SessionKey;
use crate::domain::refresh::RefreshFamily;
use crate::domain::session::{Caller, Session};
use crate::domain::token::TokenKey;
use crate::ports::errors::StoreError;

pub const ACCOUNT_PREFIX: &str = "account#";

pub const USER_PREFIX: &str = "user#";

pub(super) fn account_pk(openid: &str) -> String {
    format!("{ACCOUNT_PREFIX}{openid}")
}

pub(super) fn user_pk(user_id: &UserId) -> String {
    format!("{USER_PREFIX}{user_id}")
}

pub(super) fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

pub(super) fn n(number: i64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

pub(super) fn build_error(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

/// An item's attributes, read as the domain's types.
pub(super) struct Fields<'a>(pub(super) &'a HashMap<String, AttributeValue>);

impl Fields<'_> {
    pub(super) fn text(&self, name: &'static str) -> Result<String, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::S(s)) => Ok(s.clone()),
            _ => Err(StoreError::Malformed(format!("{name} is not a string"))),
        }
    }

    pub(super) fn number(&self, name: &'static str) -> Result<i64, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::N(n)) => n
                .parse::<i64>()
                .map_err(|_| StoreError::Malformed(format!("{name} is not an integer"))),
            _ => Err(StoreError::Malformed(format!("{name} is not a number"))),
        }
    }

    pub(super) fn user_id(&self) -> Result<UserId, StoreError> {
        UserId::parse(&self.text("userId")?)
            .ok_or_else(|| StoreError::Malformed("userId is not a userId".into()))
    }
}

pub(super) fn number_map(item: &HashMap<String, AttributeValue>, name: &str) -> Vec<(String, i64)> {
    match item.get(name) {
        Some(AttributeValue::M(map)) => map
            .iter()
            .filter_map(|(key, value)| Some((key.clone(), value.as_n().ok()?.parse().ok()?)))
            .collect(),
        _ => Vec::new(),
    }
}

pub(super) fn text_map(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Vec<(String, String)> {
    match item.get(name) {
        Some(AttributeValue::M(map)) => map
            .iter()
            .filter_map(|(key, value)| Some((key.clone(), value.as_s().ok()?.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

pub(super) fn number_map_value(entries: &[(String, i64)]) -> AttributeValue {
    AttributeValue::M(entries.iter().map(|(k, v)| (k.clone(), n(*v))).collect())
}

pub(super) fn text_map_value(entries: &[(String, String)]) -> AttributeValue {
    AttributeValue::M(entries.iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

/// An account as read, with what its next change is conditioned on.
pub(super) struct AccountItem {
    pub(super) account: Account,
    pub(super) version: i64,
    /// Session key → its `expiresAt`.
    pub(super) sessions: Vec<(String, i64)>,
    /// The refresh families: family → the `expiresAt` of its newest token.
    pub(super) families: Vec<(String, i64)>,
    /// Live (unspent) refresh tokens: key → family.
    pub(super) refresh_tokens: Vec<(String, String)>,
    /// Sessions made with a refresh family: session key → family.
    pub(super) session_families: Vec<(String, String)>,
}

pub(super) fn account_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<AccountItem, StoreError> {
    let fields = Fields(item);
    let phone = match (
        fields.text("phoneNumber"),
        fields.text("purePhoneNumber"),
        fields.text("countryCode"),
    ) {
        (Ok(phone_number), Ok(pure_phone_number), Ok(country_code)) => Some(BoundPhone {
            number: PhoneNumber {
                phone_number,
                pure_phone_number,
                country_code,
            },
            bound_at: fields.number("phoneBoundAt").unwrap_or_default(),
        }),
        _ => None,
    };
    let sessions = number_map(item, "sessions");
    Ok(AccountItem {
        account: Account {
            user_id: fields.user_id()?,
            openid: fields.text("openid")?,
            unionid: fields.text("unionid").ok(),
            created_at: fields.number("createdAt")?,
            last_login_at: fields.number("lastLoginAt")?,
            status: AccountStatus::parse(&fields.text("status")?)
                .ok_or_else(|| StoreError::Malformed("status is unknown".into()))?,
            phone,
        },
        version: fields.number("version")?,
        sessions,
        families: number_map(item, "families"),
        refresh_tokens: text_map(item, "refreshTokens"),
        session_families: text_map(item, "sessionFamilies"),
    })
}

pub(super) fn log_item(entry: &LogEntry) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("userId".to_owned(), s(entry.user_id.as_str())),
        ("at".to_owned(), s(&entry.at)),
        ("event".to_owned(), s(entry.event.as_str())),
        ("outcome".to_owned(), s(&entry.outcome)),
        ("expiresAt".to_owned(), n(entry.expires_at)),
    ]);
    let optional = [
        ("appid", &entry.appid),
        ("sourceIp", &entry.origin.source_ip),
        ("userAgent", &entry.origin.user_agent),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.to_owned(), s(value));
        }
    }
    if let Some(device) = &entry.device {
        let fields = device
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), s(value.as_str()?))))
            .collect();
        item.insert("device".to_owned(), AttributeValue::M(fields));
    }
    item
}

pub(super) fn log_entry_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<LogEntry, StoreError> {
    let fields = Fields(item);
    let device = match item.get("device") {
        Some(AttributeValue::M(map)) => Some(
            map.iter()
                .filter_map(|(name, value)| {
                    Some((name.clone(), Value::String(value.as_s().ok()?.clone())))
                })
                .collect::<Map<String, Value>>(),
        ),
        _ => None,
    };
    Ok(LogEntry {
        user_id: fields.user_id()?,
        at: fields.text("at")?,
        event: LogEvent::parse(&fields.text("event")?)
            .ok_or_else(|| StoreError::Malformed("event is unknown".into()))?,
        outcome: fields.text("outcome")?,
        appid: fields.text("appid").ok(),
        origin: Origin {
            source_ip: fields.text("sourceIp").ok(),
            user_agent: fields.text("userAgent").ok(),
        },
        device,
        expires_at: fields.number("expiresAt")?,
    })
}

/// What the authorizer reads of a session item, and all its IAM policy allows
/// besides the key `pk` (template.yaml, AuthorizerFunction; pinned by
/// tests/template_policy.py and by tests/tests/authorizer.rs).
pub const CALLER_ATTRIBUTES: [&str; 4] = ["userId", "openid", "unionid", "expiresAt"];

pub(super) fn session_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<Session, StoreError> {
    let fields = Fields(item);
    Ok(Session {
        user_id: fields.user_id()?,
        openid: fields.text("openid")?,
        unionid: fields.text("unionid").ok(),
        session_key: fields.text("sessionKey").ok().map(SessionKey::new),
        session_key_expires_at: fields.number("sessionKeyExpiresAt").ok(),
        family: fields.text("family").ok().map(RefreshFamily::from_stored),
        created_at: fields.number("createdAt")?,
        expires_at: fields.number("expiresAt")?,
    })
}

pub(super) fn caller_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<Caller, StoreError> {
    let fields = Fields(item);
    Ok(Caller {
        user_id: fields.user_id()?,
        openid: fields.text("openid")?,
        unionid: fields.text("unionid").ok(),
        expires_at: fields.number("expiresAt")?,
    })
}

impl DynamoSessionStore {
    pub(super) fn session_item(
        key: &TokenKey,
        session: &Session,
    ) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(key.as_str().to_owned())),
            (
                "userId".to_owned(),
                AttributeValue::S(session.user_id.as_str().to_owned()),
            ),
            (
                "openid".to_owned(),
                AttributeValue::S(session.openid.clone()),
            ),
            (
                "createdAt".to_owned(),
                AttributeValue::N(session.created_at.to_string()),
            ),
            (
                "expiresAt".to_owned(),
                AttributeValue::N(session.expires_at.to_string()),
            ),
        ]);
        if let Some(unionid) = &session.unionid {
            item.insert("unionid".to_owned(), AttributeValue::S(unionid.clone()));
        }
        if let Some(session_key) = &session.session_key {
            item.insert(
                "sessionKey".to_owned(),
                AttributeValue::S(session_key.expose().to_owned()),
            );
        }
        if let Some(until) = session.session_key_expires_at {
            item.insert(
                "sessionKeyExpiresAt".to_owned(),
                AttributeValue::N(until.to_string()),
            );
        }
        if let Some(family) = &session.family {
            item.insert(
                "family".to_owned(),
                AttributeValue::S(family.as_str().to_owned()),
            );
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_round_trip_and_malformed_items() {
        let mut item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("abc".into())),
            (
                "userId".to_owned(),
                AttributeValue::S("u_AAAAAAAAAAAAAAAAAAAAAA".into()),
            ),
            ("openid".to_owned(), AttributeValue::S("o1".into())),
            ("sessionKey".to_owned(), AttributeValue::S("k".into())),
            ("createdAt".to_owned(), AttributeValue::N("10".into())),
            ("expiresAt".to_owned(), AttributeValue::N("610".into())),
        ]);
        let session = session_from_item(&item).unwrap();
        assert_eq!(session.expires_at, 610);
        assert_eq!(session.unionid, None);
        // The authorizer's projection has no sessionKey, and needs none.
        let projected: HashMap<String, AttributeValue> = item
            .iter()
            .filter(|(name, _)| CALLER_ATTRIBUTES.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        assert_eq!(
            caller_from_item(&projected).unwrap(),
            Caller::from(&session)
        );
        item.insert("expiresAt".into(), AttributeValue::S("610".into()));
        assert!(matches!(
            session_from_item(&item),
            Err(StoreError::Malformed(_))
        ));
    }
}
