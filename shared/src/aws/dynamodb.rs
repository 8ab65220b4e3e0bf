//! `SessionStore` on DynamoDB. Item: `pk` (SHA-256 hex of the token), `openid`,
//! `sessionKey`, `expiresAt`, `createdAt`, optional `unionid`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::redact::SessionKey;
use crate::session::{Access, Session, SessionStore, StoreError};

/// A key no session can have (sessions are 64 hex digits).
const WARM_UP_KEY: &str = "wxauth#warm-up";
use crate::token::TokenKey;

#[derive(Debug, Clone)]
pub struct DynamoSessionStore {
    client: Client,
    table: String,
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
    /// One cheap call within the function's permissions: a GetItem of a key that
    /// never exists, or, for login (PutItem only), a put whose condition can never
    /// hold, so nothing is written.
    async fn warm_up(&self, access: Access) {
        let key = AttributeValue::S(WARM_UP_KEY.to_owned());
        let outcome = match access {
            Access::Read => self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", key)
                .send()
                .await
                .map(|_| ())
                .map_err(|err| DisplayErrorContext(&err).to_string()),
            Access::Write => match self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", key)
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(pk)")
                .send()
                .await
            {
                Err(err)
                    if !err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Err(DisplayErrorContext(&err).to_string())
                }
                _ => Ok(()),
            },
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "session table warm-up failed; the first request will connect");
        }
    }

    async fn create(&self, key: &TokenKey, session: &Session) -> Result<(), StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.as_str().to_owned()))
            .item("openid", AttributeValue::S(session.openid.clone()))
            .item(
                "sessionKey",
                AttributeValue::S(session.session_key.expose().to_owned()),
            )
            .item(
                "createdAt",
                AttributeValue::N(session.created_at.to_string()),
            )
            .item(
                "expiresAt",
                AttributeValue::N(session.expires_at.to_string()),
            )
            .condition_expression("attribute_not_exists(pk)");
        if let Some(unionid) = &session.unionid {
            put = put.item("unionid", AttributeValue::S(unionid.clone()));
        }
        match put.send().await {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::AlreadyExists)
            }
            Err(err) => Err(StoreError::Unavailable(
                DisplayErrorContext(&err).to_string(),
            )),
        }
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.delete_item(key).await
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
            .map_err(|err| StoreError::Unavailable(DisplayErrorContext(&err).to_string()))?;
        output.item.as_ref().map(session_from_item).transpose()
    }
}

impl DynamoSessionStore {
    async fn delete_item(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.as_str().to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| StoreError::Unavailable(DisplayErrorContext(&err).to_string()))
    }
}

fn session_from_item(item: &HashMap<String, AttributeValue>) -> Result<Session, StoreError> {
    let text = |name: &'static str| match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(StoreError::Malformed(format!("{name} is not a string"))),
    };
    let number = |name: &'static str| match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse::<i64>()
            .map_err(|_| StoreError::Malformed(format!("{name} is not an integer"))),
        _ => Err(StoreError::Malformed(format!("{name} is not a number"))),
    };
    Ok(Session {
        openid: text("openid")?,
        unionid: text("unionid").ok(),
        session_key: SessionKey::new(text("sessionKey")?),
        created_at: number("createdAt")?,
        expires_at: number("expiresAt")?,
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
        item.insert("expiresAt".into(), AttributeValue::S("610".into()));
        assert!(matches!(
            session_from_item(&item),
            Err(StoreError::Malformed(_))
        ));
    }
}
