//! What an identity lists about its refresh families (`families`, family →
//! the expiry of its newest token; `refreshTokens`, live token → family;
//! `sessionFamilies`, session → family), the refresh token's item, and the
//! revocation of families: what logins, refreshes, logouts, reuse, deletion
//! and disabling share.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::DynamoSessionStore;
use super::items::{
    Fields, IdentityItem, build_error, legacy_pk, n, number_map_value, s, text_map_value,
};
use super::table::Plan;
use crate::domain::account::UserId;
use crate::domain::app::AppId;
use crate::domain::login_log::LogEntry;
use crate::domain::redact::SessionKey;
use crate::domain::refresh::{
    KEPT_KEY_PREFIX, REFRESH_PREFIX, RefreshKey, families_a_login_revokes,
};
use crate::ports::errors::StoreError;
use crate::ports::sessions::LoginWrite;

pub(super) fn refresh_pk(key: &RefreshKey) -> String {
    format!("{REFRESH_PREFIX}{}", key.as_str())
}

pub(super) fn kept_key_pk(family: &str) -> String {
    format!("{KEPT_KEY_PREFIX}{family}")
}

/// What an identity lists about its refresh families.
#[derive(Debug, Clone, Default)]
pub(super) struct FamilyMaps {
    pub(super) families: Vec<(String, i64)>,
    pub(super) refresh_tokens: Vec<(String, String)>,
    pub(super) session_families: Vec<(String, String)>,
}

impl FamilyMaps {
    pub(super) const SET_CLAUSE: &'static str = ", families = :families, refreshTokens = :refreshTokens, sessionFamilies = :sessionFamilies";

    pub(super) fn of(item: &IdentityItem) -> Self {
        Self {
            families: item.families.clone(),
            refresh_tokens: item.refresh_tokens.clone(),
            session_families: item.session_families.clone(),
        }
    }

    /// Forgets sessions that are being deleted anyway.
    pub(super) fn without_sessions(self, gone: &[(String, i64)]) -> Self {
        let keys: Vec<String> = gone.iter().map(|(key, _)| key.clone()).collect();
        self.without_session_keys(&keys)
    }

    pub(super) fn without_session_keys(mut self, gone: &[String]) -> Self {
        self.session_families.retain(|(key, _)| !gone.contains(key));
        self
    }

    /// The live (unspent) refresh tokens of `family`: one, unless an older
    /// version of wxauth forked it.
    pub(super) fn live_tokens_of(&self, family: &str) -> Vec<String> {
        self.refresh_tokens
            .iter()
            .filter(|(_, f)| f == family)
            .map(|(key, _)| key.clone())
            .collect()
    }

    fn split(self, revoke: impl Fn(&str, i64) -> bool) -> (Self, Self) {
        let (revoked, kept): (Vec<_>, Vec<_>) = self
            .families
            .into_iter()
            .partition(|(family, expires_at)| revoke(family, *expires_at));
        let is_revoked = |family: &str| revoked.iter().any(|(f, _)| f == family);
        // A token whose family is no longer listed (a disabled account's) is
        // dead already: it goes with the revoked ones.
        let is_kept = |family: &str| kept.iter().any(|(f, _)| f == family);
        let (gone_tokens, tokens): (Vec<_>, Vec<_>) = self
            .refresh_tokens
            .into_iter()
            .partition(|(_, family)| !is_kept(family));
        let (gone_sessions, sessions): (Vec<_>, Vec<_>) = self
            .session_families
            .into_iter()
            .partition(|(_, family)| is_revoked(family));
        (
            Self {
                families: kept,
                refresh_tokens: tokens,
                session_families: sessions,
            },
            Self {
                families: revoked,
                refresh_tokens: gone_tokens,
                session_families: gone_sessions,
            },
        )
    }

    /// (kept, revoked): every family revoked.
    pub(super) fn revoke_all(self) -> (Self, Self) {
        self.split(|_, _| true)
    }

    /// (kept, revoked): what `families_a_login_revokes` picks.
    pub(super) fn revoke_expired_and_over(self, now: i64) -> (Self, Self) {
        let revoked = families_a_login_revokes(&self.families, now);
        self.split(|family, _| revoked.iter().any(|(f, _)| f == family))
    }

    pub(super) fn revoke_family(self, family: &str) -> (Self, Self) {
        self.split(|f, _| f == family)
    }

    pub(super) fn has_family(&self, family: &str) -> bool {
        self.families.iter().any(|(f, _)| f == family)
    }

    /// Adds the family a login starts: its token and its first session.
    pub(super) fn with_login(mut self, login: &LoginWrite<'_>) -> Self {
        if let Some(issue) = login.refresh {
            let family = issue.family.as_str().to_owned();
            self.families.push((family.clone(), issue.expires_at));
            self.refresh_tokens
                .push((issue.key.as_str().to_owned(), family.clone()));
            self.session_families
                .push((login.key.as_str().to_owned(), family));
        }
        self
    }

    /// The items of these families' live tokens and kept session_keys.
    pub(super) fn keys_to_delete(&self) -> Vec<String> {
        let tokens = self
            .refresh_tokens
            .iter()
            .map(|(key, _)| refresh_pk(&RefreshKey::from_stored(key.clone())));
        let kept = self.families.iter().map(|(family, _)| kept_key_pk(family));
        tokens.chain(kept).collect()
    }

    pub(super) fn session_keys(&self) -> impl Iterator<Item = &str> {
        self.session_families.iter().map(|(key, _)| key.as_str())
    }

    fn values(&self) -> [(&'static str, AttributeValue); 3] {
        [
            (":families", number_map_value(&self.families)),
            (":refreshTokens", text_map_value(&self.refresh_tokens)),
            (":sessionFamilies", text_map_value(&self.session_families)),
        ]
    }

    /// Binds `SET_CLAUSE`'s values.
    pub(super) fn bind(&self, mut update: UpdateBuilder) -> UpdateBuilder {
        for (name, value) in self.values() {
            update = update.expression_attribute_values(name, value);
        }
        update
    }

    pub(super) fn write_into(&self, item: &mut HashMap<String, AttributeValue>) {
        for (name, value) in self.values() {
            item.insert(name.trim_start_matches(':').to_owned(), value);
        }
    }
}

pub(super) fn kept_key_from(
    item: Option<&HashMap<String, AttributeValue>>,
    now: i64,
) -> Option<(SessionKey, i64)> {
    let fields = Fields(item?);
    let expires_at = fields.number("expiresAt").ok()?;
    (expires_at > now).then_some(())?;
    Some((SessionKey::new(fields.text("sessionKey").ok()?), expires_at))
}

pub(super) struct RefreshItem {
    pub(super) family: String,
    pub(super) user_id: UserId,
    pub(super) expires_at: i64,
    pub(super) spent_at: Option<i64>,
    /// The app of the login that started the family (none: written before
    /// several apps, by the default app).
    pub(super) appid: Option<AppId>,
    /// While the token is live: its identity's item, whose maps list the
    /// family (the fast path's one write addresses it without a read), and
    /// who it is. Removed when it is spent.
    pub(super) identity: Option<String>,
    pub(super) openid: Option<String>,
    pub(super) unionid: Option<String>,
    /// How many refreshes led to this token (the login's is 1).
    pub(super) generation: i64,
    /// Once spent: the session its refresh made, which a retry within the
    /// grace revokes (its answer is taken to be lost).
    pub(super) successor_session: Option<String>,
}

pub(super) fn refresh_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<RefreshItem, StoreError> {
    let fields = Fields(item);
    Ok(RefreshItem {
        family: fields.text("family")?,
        user_id: fields.user_id()?,
        expires_at: fields.number("expiresAt")?,
        spent_at: fields.number("spentAt").ok(),
        appid: fields
            .text("appid")
            .ok()
            .map(|text| {
                AppId::parse(&text)
                    .ok_or_else(|| StoreError::Malformed("appid is not an appid".into()))
            })
            .transpose()?,
        identity: fields.text("identity").ok(),
        openid: fields.text("openid").ok(),
        unionid: fields.text("unionid").ok(),
        generation: fields.number("generation").unwrap_or(0),
        successor_session: fields.text("successorSession").ok(),
    })
}

impl RefreshItem {
    /// The identity item listing this live token's family: named, or (a
    /// token written before several apps) the account under its openid.
    pub(super) fn identity_pk(&self) -> Option<String> {
        self.identity
            .clone()
            .or_else(|| self.openid.as_deref().map(legacy_pk))
    }
}

impl DynamoSessionStore {
    /// A live refresh token's item: its family, user and account (openid,
    /// unionid: removed when the token is spent, and the item deleted with
    /// the account while live).
    pub(super) fn refresh_item(
        &self,
        key: &RefreshKey,
        token: &RefreshItem,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = HashMap::from([
            ("pk".to_owned(), s(&refresh_pk(key))),
            ("family".to_owned(), s(&token.family)),
            ("userId".to_owned(), s(token.user_id.as_str())),
            ("expiresAt".to_owned(), n(token.expires_at)),
            ("generation".to_owned(), n(token.generation)),
        ]);
        if let Some(openid) = &token.openid {
            item.insert("openid".to_owned(), s(openid));
        }
        if let Some(appid) = &token.appid {
            item.insert("appid".to_owned(), s(appid.as_str()));
        }
        if let Some(identity) = &token.identity {
            item.insert("identity".to_owned(), s(identity));
        }
        if let Some(unionid) = &token.unionid {
            item.insert("unionid".to_owned(), s(unionid));
        }
        self.put(item)
    }

    /// Everything that revokes `revoked` (the identity's update first, the
    /// one conditioned on its version); `also` deletes more session keys;
    /// `log` is written with it.
    pub(super) fn revocation_plan(
        &self,
        identity: &IdentityItem,
        kept: &FamilyMaps,
        revoked: &FamilyMaps,
        also: &[&str],
        log: Option<&LogEntry>,
    ) -> Result<Plan, StoreError> {
        let mut doomed: Vec<String> = revoked.session_keys().map(str::to_owned).collect();
        for key in also {
            if !doomed.iter().any(|d| d == key) {
                doomed.push((*key).to_owned());
            }
        }
        let sessions: Vec<(String, i64)> = identity
            .sessions
            .iter()
            .filter(|(key, _)| !doomed.contains(key))
            .cloned()
            .collect();
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&identity.pk))
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#sessions", "sessions")
            .expression_attribute_values(":version", n(identity.version))
            .expression_attribute_values(":next", n(identity.version + 1))
            .expression_attribute_values(":sessions", number_map_value(&sessions));
        update = kept.bind(update);
        let update = update
            .update_expression(format!(
                "SET #version = :next, #sessions = :sessions{}",
                FamilyMaps::SET_CLAUSE
            ))
            .build()
            .map_err(build_error)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if let Some(entry) = log {
            items.extend(self.log_put(entry)?);
        }
        doomed.extend(revoked.keys_to_delete());
        self.plan(items, doomed, Vec::new())
    }
}
