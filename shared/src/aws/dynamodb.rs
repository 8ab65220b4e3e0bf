//! `SessionStore` on DynamoDB. Item: `pk` (SHA-256 hex of the token), `openid`,
//! `sessionKey`, `expiresAt`, `createdAt`, optional `unionid`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::account::UserId;
use crate::redact::SessionKey;
use crate::refresh::{RefreshFamily, RefreshOutcome, RefreshWrite};
use crate::session::{Access, Caller, LoginOutcome, LoginWrite, Session, SessionStore, StoreError};
use crate::token::TokenKey;

/// A key no session can have (sessions are 64 hex digits): login's warm-up put,
/// whose condition can never hold.
const WARM_UP_KEY: &str = "wxauth#warm-up";
/// A session key nobody holds (the SHA-256 of a 256-bit random token is never
/// all zeros): the readers' warm-up GetItem, shaped as the authorizer's reads
/// are, so that its narrowed IAM policy allows it too.
const WARM_UP_SESSION_KEY: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// An SDK error as the store reports it, with its whole cause chain.
pub(super) fn unavailable<E, R>(err: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(err).to_string())
}

/// Whether a write was refused by its condition expression (any operation).
fn refused_by_condition<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

/// Runs a conditional put: `Ok(false)` when the condition refused it.
pub(super) async fn put_if(put: PutItemFluentBuilder) -> Result<bool, StoreError> {
    match put.send().await {
        Ok(_) => Ok(true),
        Err(err) if refused_by_condition(&err) => Ok(false),
        Err(err) => Err(unavailable(&err)),
    }
}

/// Runs a conditional update: `Ok(false)` when the condition refused it.
pub(super) async fn update_if(update: UpdateItemFluentBuilder) -> Result<bool, StoreError> {
    match update.send().await {
        Ok(_) => Ok(true),
        Err(err) if refused_by_condition(&err) => Ok(false),
        Err(err) => Err(unavailable(&err)),
    }
}

#[derive(Debug, Clone)]
pub struct DynamoSessionStore {
    pub(super) client: Client,
    pub(super) table: String,
    /// The login log table (`LOGIN_LOG_TABLE`), when one is kept.
    pub(super) log_table: Option<String>,
}

impl DynamoSessionStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: String) -> Self {
        Self::from_client(Client::new(sdk), table)
    }

    pub fn from_client(client: Client, table: String) -> Self {
        Self {
            client,
            table,
            log_table: None,
        }
    }

    /// Writes login log entries to `log_table` (none when `None`).
    pub fn with_login_log(mut self, log_table: Option<String>) -> Self {
        self.log_table = log_table;
        self
    }
}

impl SessionStore for DynamoSessionStore {
    /// One cheap call within the function's permissions: a projected GetItem of
    /// a session key that never exists, or, for login, a put whose condition can
    /// never hold, so nothing is written.
    async fn warm_up(&self, access: Access) {
        let outcome = match access {
            Access::Read => self.read_caller(WARM_UP_SESSION_KEY).await.map(|_| ()),
            Access::Write => put_if(
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", AttributeValue::S(WARM_UP_KEY.to_owned()))
                    .condition_expression("attribute_exists(pk) AND attribute_not_exists(pk)"),
            )
            .await
            .map(|_| ()),
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "session table warm-up failed; the first request will connect");
        }
    }

    async fn login(&self, login: &LoginWrite<'_>) -> Result<LoginOutcome, StoreError> {
        super::accounts::login(self, login).await
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.delete_plain(key).await
    }

    async fn logout(&self, key: &TokenKey, session: &Session) -> Result<(), StoreError> {
        super::refresh::logout(self, key, session).await
    }

    async fn refresh(&self, refresh: &RefreshWrite<'_>) -> Result<RefreshOutcome, StoreError> {
        super::refresh::refresh(self, refresh).await
    }

    async fn get(&self, key: &TokenKey) -> Result<Option<Session>, StoreError> {
        let item = self.consistent_get(key.as_str(), None).await?;
        item.as_ref().map(session_from_item).transpose()
    }

    /// GetItem with a projection of exactly `CALLER_ATTRIBUTES`: the authorizer's
    /// role may read no other attribute (`dynamodb:Attributes` in template.yaml),
    /// so neither the session_key nor the WeChat access token ever reaches it.
    async fn caller(&self, key: &TokenKey) -> Result<Option<Caller>, StoreError> {
        self.read_caller(key.as_str()).await
    }
}

impl DynamoSessionStore {
    async fn read_caller(&self, pk: &str) -> Result<Option<Caller>, StoreError> {
        let projection = CALLER_ATTRIBUTES.join(", ");
        let item = self.consistent_get(pk, Some(&projection)).await?;
        item.as_ref().map(caller_from_item).transpose()
    }

    /// The item under `pk`, read consistently (every read of the table is:
    /// what a write answered is visible to the very next request), whole or
    /// only the `projection`'s attributes.
    pub(super) async fn consistent_get(
        &self,
        pk: &str,
        projection: Option<&str>,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .set_projection_expression(projection.map(str::to_owned))
            .consistent_read(true)
            .send()
            .await
            .map(|output| output.item)
            .map_err(|err| unavailable(&err))
    }
}

/// What the authorizer reads of a session item, and all its IAM policy allows
/// besides the key `pk` (template.yaml, AuthorizerFunction; pinned by
/// tests/template_policy.py and by tests/tests/authorizer.rs).
pub const CALLER_ATTRIBUTES: [&str; 4] = ["userId", "openid", "unionid", "expiresAt"];

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

fn session_from_item(item: &HashMap<String, AttributeValue>) -> Result<Session, StoreError> {
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

fn caller_from_item(item: &HashMap<String, AttributeValue>) -> Result<Caller, StoreError> {
    let fields = Fields(item);
    Ok(Caller {
        user_id: fields.user_id()?,
        openid: fields.text("openid")?,
        unionid: fields.text("unionid").ok(),
        expires_at: fields.number("expiresAt")?,
    })
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
