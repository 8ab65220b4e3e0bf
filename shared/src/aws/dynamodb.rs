//! `SessionStore` on DynamoDB. Item: `pk` (SHA-256 hex of the token), `openid`,
//! `sessionKey`, `expiresAt`, `createdAt`, optional `unionid`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::backoff::full_jitter;
use crate::redact::SessionKey;
use crate::session::{Access, Caller, Session, SessionStore, StoreError};
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
pub(super) fn refused_by_condition<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
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

#[derive(Debug, Clone)]
pub struct DynamoSessionStore {
    pub(super) client: Client,
    pub(super) table: String,
}

impl DynamoSessionStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: String) -> Self {
        Self::from_client(Client::new(sdk), table)
    }

    pub fn from_client(client: Client, table: String) -> Self {
        Self { client, table }
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

    async fn create(&self, key: &TokenKey, session: &Session) -> Result<(), StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::session_item(key, session)))
            .condition_expression("attribute_not_exists(pk)");
        match put_if(put).await? {
            true => Ok(()),
            false => Err(StoreError::AlreadyExists),
        }
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.as_str().to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| unavailable(&err))
    }

    async fn create_exclusive(&self, key: &TokenKey, session: &Session) -> Result<(), StoreError> {
        for round in 0..EXCLUSIVE_ATTEMPTS {
            match self.try_create_exclusive(key, session, round).await {
                Ok(()) => return Ok(()),
                Err(Exclusive::Failed(err)) => return Err(err),
                Err(Exclusive::Contended) => {
                    // Spread the contenders out so the next round has a winner.
                    let pause = full_jitter(CONTENTION_BACKOFF, round, CONTENTION_BACKOFF_CAP);
                    tokio::time::sleep(pause).await;
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "{EXCLUSIVE_ATTEMPTS} concurrent logins of one user kept conflicting"
        )))
    }

    async fn get(&self, key: &TokenKey) -> Result<Option<Session>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.as_str().to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| unavailable(&err))?;
        output.item.as_ref().map(session_from_item).transpose()
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
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .projection_expression(CALLER_ATTRIBUTES.join(", "))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| unavailable(&err))?;
        output.item.as_ref().map(caller_from_item).transpose()
    }
}

/// What the authorizer reads of a session item, and all its IAM policy allows
/// besides the key `pk` (template.yaml, AuthorizerFunction; pinned by
/// tests/template_policy.py and by tests/tests/authorizer.rs).
pub const CALLER_ATTRIBUTES: [&str; 3] = ["openid", "unionid", "expiresAt"];

/// The item naming an openid's current session: `pk` = this prefix + openid.
/// Session keys are 64 hex digits, so the two kinds of item never collide.
const OWNER_PREFIX: &str = "openid#";
/// Concurrent logins of one user retry the transaction up to this many times
/// (each round lets one of them through); the request deadline bounds it too.
/// Only contention is retried here: throttling and other errors have had the
/// SDK's own retries already.
const EXCLUSIVE_ATTEMPTS: u32 = 32;
const CONTENTION_BACKOFF: std::time::Duration = std::time::Duration::from_millis(2);
const CONTENTION_BACKOFF_CAP: std::time::Duration = std::time::Duration::from_millis(50);

impl DynamoSessionStore {
    fn session_item(key: &TokenKey, session: &Session) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(key.as_str().to_owned())),
            (
                "openid".to_owned(),
                AttributeValue::S(session.openid.clone()),
            ),
            (
                "sessionKey".to_owned(),
                AttributeValue::S(session.session_key.expose().to_owned()),
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
        item
    }

    /// One attempt: read the openid's current session, then in one transaction
    /// write the new session, point the owner item at it (only if it still
    /// points where we read) and delete the previous session.
    async fn try_create_exclusive(
        &self,
        key: &TokenKey,
        session: &Session,
        round: u32,
    ) -> Result<(), Exclusive> {
        use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
        let owner_pk = format!("{OWNER_PREFIX}{}", session.openid);
        let owner = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(owner_pk.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| Exclusive::Failed(unavailable(&err)))?;
        let previous = owner
            .item
            .as_ref()
            .and_then(|item| item.get("current"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        let build = |put: Put| TransactWriteItem::builder().put(put).build();
        let session_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::session_item(key, session)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|err| Exclusive::Failed(StoreError::Unavailable(err.to_string())))?;
        let mut owner_put = Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(owner_pk))
            .item("openid", AttributeValue::S(session.openid.clone()))
            .item("current", AttributeValue::S(key.as_str().to_owned()))
            .item(
                "expiresAt",
                AttributeValue::N(session.expires_at.to_string()),
            );
        owner_put = match &previous {
            Some(previous) => owner_put
                .condition_expression("#current = :previous")
                .expression_attribute_names("#current", "current")
                .expression_attribute_values(":previous", AttributeValue::S(previous.clone())),
            None => owner_put.condition_expression("attribute_not_exists(pk)"),
        };
        let owner_put = owner_put
            .build()
            .map_err(|err| Exclusive::Failed(StoreError::Unavailable(err.to_string())))?;
        // Idempotent per round: a request the SDK sends again after a lost
        // answer is not applied twice (each round's items differ, so each
        // round has its own token).
        let request_token = format!("{}-{round:03}", &key.as_str()[..32]);
        let mut transaction = self
            .client
            .transact_write_items()
            .client_request_token(request_token)
            .transact_items(build(session_put))
            .transact_items(build(owner_put));
        if let Some(previous) = previous {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(previous))
                .build()
                .map_err(|err| Exclusive::Failed(StoreError::Unavailable(err.to_string())))?;
            transaction =
                transaction.transact_items(TransactWriteItem::builder().delete(delete).build());
        }
        match transaction.send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let reasons: Vec<Option<String>> = match err.as_service_error() {
                    Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e)) => {
                        e.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect()
                    }
                    // The request token, derived from the session's key, was used
                    // by another transaction: the key is taken, draw another token.
                    Some(e) if e.is_idempotent_parameter_mismatch_exception() => {
                        return Err(Exclusive::Failed(StoreError::AlreadyExists));
                    }
                    _ => return Err(Exclusive::Failed(unavailable(&err))),
                };
                let code = |i: usize| reasons.get(i).and_then(|r| r.as_deref());
                if code(0) == Some("ConditionalCheckFailed") {
                    Err(Exclusive::Failed(StoreError::AlreadyExists))
                } else if code(1) == Some("ConditionalCheckFailed")
                    || reasons
                        .iter()
                        .any(|r| r.as_deref() == Some("TransactionConflict"))
                {
                    // The owner moved on (a concurrent login) or another
                    // transaction touched the same items: try another round.
                    Err(Exclusive::Contended)
                } else {
                    // Throttling and anything else: the SDK retried already.
                    Err(Exclusive::Failed(StoreError::Refused(format!(
                        "transaction cancelled: {reasons:?}"
                    ))))
                }
            }
        }
    }
}

enum Exclusive {
    Failed(StoreError),
    Contended,
}

/// An item's attributes, read as the domain's types.
struct Fields<'a>(&'a HashMap<String, AttributeValue>);

impl Fields<'_> {
    fn text(&self, name: &'static str) -> Result<String, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::S(s)) => Ok(s.clone()),
            _ => Err(StoreError::Malformed(format!("{name} is not a string"))),
        }
    }

    fn number(&self, name: &'static str) -> Result<i64, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::N(n)) => n
                .parse::<i64>()
                .map_err(|_| StoreError::Malformed(format!("{name} is not an integer"))),
            _ => Err(StoreError::Malformed(format!("{name} is not a number"))),
        }
    }
}

fn session_from_item(item: &HashMap<String, AttributeValue>) -> Result<Session, StoreError> {
    let fields = Fields(item);
    Ok(Session {
        openid: fields.text("openid")?,
        unionid: fields.text("unionid").ok(),
        session_key: SessionKey::new(fields.text("sessionKey")?),
        created_at: fields.number("createdAt")?,
        expires_at: fields.number("expiresAt")?,
    })
}

fn caller_from_item(item: &HashMap<String, AttributeValue>) -> Result<Caller, StoreError> {
    let fields = Fields(item);
    Ok(Caller {
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
