//! The table's item shapes: keys and their prefixes, attribute values, and
//! each item as read and written (sessions, identities and the accounts
//! they are homes of, unionids, log entries). Every operation file uses
//! these; none of them imports another.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};

use super::DynamoSessionStore;
use crate::domain::account::{Account, AccountStatus, BoundPhone, UserId};
use crate::domain::app::AppId;
use crate::domain::identity::LinkedIdentity;
use crate::domain::login_log::{LogEntry, LogEvent, Origin};
use crate::domain::phone::PhoneNumber;
use crate::domain::redact::SessionKey;
use crate::domain::refresh::RefreshFamily;
use crate::domain::session::{Caller, Session};
use crate::domain::token::TokenKey;
use crate::ports::errors::StoreError;

/// An account written before several apps, under its openid: it holds the
/// default app's identity and the account's own data.
pub const ACCOUNT_PREFIX: &str = "account#";

/// An identity, `identity#<appid>#<openid>`: the home of an account created
/// since several apps (it holds the account's data too), or an identity
/// linked to an account whose home is elsewhere (`home` names it).
pub const IDENTITY_PREFIX: &str = "identity#";

/// `unionid#<unionid>`: the account holding a unionid (`userId`, `home`).
pub const UNIONID_PREFIX: &str = "unionid#";

/// `user#<userId>`: the index from a userId to its account's home.
pub const USER_PREFIX: &str = "user#";

pub(super) fn legacy_pk(openid: &str) -> String {
    format!("{ACCOUNT_PREFIX}{openid}")
}

pub(super) fn identity_pk(appid: &AppId, openid: &str) -> String {
    format!("{IDENTITY_PREFIX}{appid}#{openid}")
}

pub(super) fn unionid_pk(unionid: &str) -> String {
    format!("{UNIONID_PREFIX}{unionid}")
}

pub(super) fn user_pk(user_id: &UserId) -> String {
    format!("{USER_PREFIX}{user_id}")
}

/// The identity an identity item's key names: an appid (none for an
/// account written before several apps) and its openid.
pub(super) fn identity_of_pk(pk: &str) -> Option<(Option<AppId>, String)> {
    if let Some(openid) = pk.strip_prefix(ACCOUNT_PREFIX) {
        return Some((None, openid.to_owned()));
    }
    let (appid, openid) = pk.strip_prefix(IDENTITY_PREFIX)?.split_once('#')?;
    Some((Some(AppId::parse(appid)?), openid.to_owned()))
}

/// The keys an identity may be kept under, newest form first: an account
/// written before several apps holds the default app's under its openid.
pub(super) fn identity_keys(appid: Option<&AppId>, openid: &str, default_app: bool) -> Vec<String> {
    match appid {
        Some(appid) if default_app => vec![identity_pk(appid, openid), legacy_pk(openid)],
        Some(appid) => vec![identity_pk(appid, openid)],
        None => vec![legacy_pk(openid)],
    }
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

/// An identity's item as read: its login state (sessions and refresh
/// families), what its next change is conditioned on, copies of the
/// account's status and unionid, and, in the account's home, the account's
/// own data.
#[derive(Debug, Clone)]
pub(super) struct IdentityItem {
    pub(super) pk: String,
    /// `None`: written before several apps, by the default app.
    pub(super) appid: Option<AppId>,
    pub(super) openid: String,
    pub(super) user_id: UserId,
    pub(super) version: i64,
    /// The home's is the account's; a linked identity's is a copy that every
    /// change of it (disabling, enabling) writes too.
    pub(super) status: AccountStatus,
    /// Likewise: the account's unionid, copied on its linked identities.
    pub(super) unionid: Option<String>,
    pub(super) linked_at: i64,
    /// A linked identity: the key of its account's home.
    pub(super) home: Option<String>,
    /// Session key → its `expiresAt`.
    pub(super) sessions: Vec<(String, i64)>,
    /// The refresh families: family → the `expiresAt` of its newest token.
    pub(super) families: Vec<(String, i64)>,
    /// Live (unspent) refresh tokens: key → family.
    pub(super) refresh_tokens: Vec<(String, String)>,
    /// Sessions made with a refresh family: session key → family.
    pub(super) session_families: Vec<(String, String)>,
    /// The home's: the account.
    pub(super) account: Option<HomeData>,
}

/// What only an account's home holds.
#[derive(Debug, Clone)]
pub(super) struct HomeData {
    pub(super) created_at: i64,
    pub(super) last_login_at: i64,
    pub(super) phone: Option<BoundPhone>,
    pub(super) risk_rank: Option<u8>,
    /// The other identities' keys → when each was linked.
    pub(super) linked: Vec<(String, i64)>,
}

impl IdentityItem {
    /// This item's account's home: itself, or the one it names.
    pub(super) fn home_pk(&self) -> &str {
        self.home.as_deref().unwrap_or(&self.pk)
    }

    pub(super) fn is_home(&self) -> bool {
        self.home.is_none()
    }

    /// The account, as the domain sees it (a home only).
    pub(super) fn to_account(&self) -> Option<Account> {
        let home = self.account.as_ref()?;
        let mut identities = vec![LinkedIdentity {
            appid: self.appid.clone(),
            openid: self.openid.clone(),
            linked_at: self.linked_at,
        }];
        for (pk, linked_at) in &home.linked {
            if let Some((appid, openid)) = identity_of_pk(pk) {
                identities.push(LinkedIdentity {
                    appid,
                    openid,
                    linked_at: *linked_at,
                });
            }
        }
        identities.sort_by_key(|identity| identity.linked_at);
        Some(Account {
            user_id: self.user_id.clone(),
            identities,
            unionid: self.unionid.clone(),
            created_at: home.created_at,
            last_login_at: home.last_login_at,
            status: self.status,
            phone: home.phone.clone(),
            risk_rank: home.risk_rank,
        })
    }
}

pub(super) fn identity_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<IdentityItem, StoreError> {
    let fields = Fields(item);
    let pk = fields.text("pk")?;
    let home = fields.text("home").ok();
    let appid = match fields.text("appid").ok() {
        Some(text) => Some(
            AppId::parse(&text)
                .ok_or_else(|| StoreError::Malformed("appid is not an appid".into()))?,
        ),
        None => None,
    };
    let account = match home {
        Some(_) => None,
        None => Some(HomeData {
            created_at: fields.number("createdAt")?,
            last_login_at: fields.number("lastLoginAt")?,
            phone: phone_from(&fields),
            risk_rank: fields
                .number("riskRank")
                .ok()
                .and_then(|rank| u8::try_from(rank).ok()),
            linked: number_map(item, "identities"),
        }),
    };
    Ok(IdentityItem {
        appid,
        openid: fields.text("openid")?,
        user_id: fields.user_id()?,
        version: fields.number("version")?,
        status: AccountStatus::parse(&fields.text("status")?)
            .ok_or_else(|| StoreError::Malformed("status is unknown".into()))?,
        unionid: fields.text("unionid").ok(),
        linked_at: match &account {
            Some(home) => fields.number("linkedAt").unwrap_or(home.created_at),
            None => fields.number("linkedAt")?,
        },
        sessions: number_map(item, "sessions"),
        families: number_map(item, "families"),
        refresh_tokens: text_map(item, "refreshTokens"),
        session_families: text_map(item, "sessionFamilies"),
        account,
        home,
        pk,
    })
}

fn phone_from(fields: &Fields<'_>) -> Option<BoundPhone> {
    match (
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
    }
}

/// The phone number's attributes, to write on a home.
pub(super) fn phone_attributes(phone: &BoundPhone) -> [(&'static str, AttributeValue); 4] {
    [
        ("phoneNumber", s(&phone.number.phone_number)),
        ("purePhoneNumber", s(&phone.number.pure_phone_number)),
        ("countryCode", s(&phone.number.country_code)),
        ("phoneBoundAt", n(phone.bound_at)),
    ]
}

/// What a unionid's item says: the account holding it, and its home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UnionidHolder {
    pub(super) user_id: UserId,
    pub(super) home: String,
}

pub(super) fn unionid_holder_from(
    item: &HashMap<String, AttributeValue>,
) -> Result<UnionidHolder, StoreError> {
    let fields = Fields(item);
    Ok(UnionidHolder {
        user_id: fields.user_id()?,
        home: fields.text("home")?,
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
    if let Some(other) = &entry.other_user_id {
        item.insert("otherUserId".to_owned(), s(other.as_str()));
    }
    if let Some(rank) = entry.risk_rank {
        item.insert("riskRank".to_owned(), n(i64::from(rank)));
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
        other_user_id: fields
            .text("otherUserId")
            .ok()
            .and_then(|text| UserId::parse(&text)),
        risk_rank: fields
            .number("riskRank")
            .ok()
            .and_then(|rank| u8::try_from(rank).ok()),
        expires_at: fields.number("expiresAt")?,
    })
}

/// What the authorizer reads of a session item, and all its IAM policy allows
/// besides the key `pk` (template.yaml, AuthorizerFunction; pinned by
/// tests/template_policy.py and by tests/tests/authorizer.rs).
pub const CALLER_ATTRIBUTES: [&str; 5] = ["userId", "appid", "openid", "unionid", "expiresAt"];

fn appid_of(fields: &Fields<'_>) -> Result<Option<AppId>, StoreError> {
    match fields.text("appid").ok() {
        None => Ok(None),
        Some(text) => AppId::parse(&text)
            .map(Some)
            .ok_or_else(|| StoreError::Malformed("appid is not an appid".into())),
    }
}

pub(super) fn session_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<Session, StoreError> {
    let fields = Fields(item);
    Ok(Session {
        user_id: fields.user_id()?,
        appid: appid_of(&fields)?,
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
        appid: appid_of(&fields)?,
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
        if let Some(appid) = &session.appid {
            item.insert("appid".to_owned(), s(appid.as_str()));
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
