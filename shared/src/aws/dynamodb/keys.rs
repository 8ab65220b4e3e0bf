//! The published key set in the session table: one item, `signingkeys#published`,
//! whose `keys` map holds each accepted key's public half (`n`, `e`,
//! base64url) and when it was first published. Readers project `keys` only
//! (the authorizer's IAM policy allows no more); writers merge under a
//! version condition, so concurrent publishers never lose a key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoSessionStore;
use super::table::{put_if, unavailable};
use crate::domain::jwt::{KeyVersion, PublicKey, PublishedKey, merge_published};
use crate::ports::errors::StoreError;
use crate::ports::keys::PublicKeyStore;

pub const PUBLISHED_KEYS_PK: &str = "signingkeys#published";
/// The attribute readers project.
pub const PUBLISHED_KEYS_ATTRIBUTE: &str = "keys";
const ATTEMPTS: usize = 8;

fn keys_from_item(item: &HashMap<String, AttributeValue>) -> Vec<PublishedKey> {
    let Some(AttributeValue::M(keys)) = item.get(PUBLISHED_KEYS_ATTRIBUTE) else {
        return Vec::new();
    };
    let mut published: Vec<PublishedKey> = keys
        .iter()
        .filter_map(|(kid, value)| {
            let fields = value.as_m().ok()?;
            let text = |name: &str| fields.get(name)?.as_s().ok().cloned();
            let key = PublicKey::from_encoded(kid, &text("n")?, &text("e")?)?;
            let published_at = fields.get("publishedAt")?.as_n().ok()?.parse().ok()?;
            let version_id = text("versionId");
            Some(PublishedKey {
                key,
                published_at,
                version_id,
            })
        })
        .collect();
    published.sort_by(|a, b| a.key.kid.cmp(&b.key.kid));
    published
}

fn keys_value(keys: &[PublishedKey]) -> AttributeValue {
    AttributeValue::M(
        keys.iter()
            .map(|published| {
                let key = &published.key;
                let mut fields = HashMap::from([
                    ("n".to_owned(), AttributeValue::S(key.encoded_n())),
                    ("e".to_owned(), AttributeValue::S(key.encoded_e())),
                    (
                        "publishedAt".to_owned(),
                        AttributeValue::N(published.published_at.to_string()),
                    ),
                ]);
                if let Some(version_id) = &published.version_id {
                    fields.insert(
                        "versionId".to_owned(),
                        AttributeValue::S(version_id.clone()),
                    );
                }
                (key.kid.clone(), AttributeValue::M(fields))
            })
            .collect(),
    )
}

impl DynamoSessionStore {
    async fn read_published(&self) -> Result<(Vec<PublishedKey>, Option<i64>), StoreError> {
        let item = self.consistent_get(PUBLISHED_KEYS_PK, None).await?;
        let version = item
            .as_ref()
            .and_then(|item| item.get("version")?.as_n().ok()?.parse().ok());
        Ok((
            item.as_ref().map(keys_from_item).unwrap_or_default(),
            version,
        ))
    }

    /// Replaces the set with `change(set)`, under the version read.
    async fn change_published(
        &self,
        change: impl Fn(Vec<PublishedKey>) -> Vec<PublishedKey>,
    ) -> Result<Vec<PublishedKey>, StoreError> {
        for _ in 0..ATTEMPTS {
            let (keys, version) = self.read_published().await?;
            let next = change(keys.clone());
            if next == keys && version.is_some() {
                return Ok(keys);
            }
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", AttributeValue::S(PUBLISHED_KEYS_PK.to_owned()))
                .item(PUBLISHED_KEYS_ATTRIBUTE, keys_value(&next))
                .item(
                    "version",
                    AttributeValue::N((version.unwrap_or(0) + 1).to_string()),
                );
            let put = match version {
                Some(version) => put
                    .condition_expression("#version = :version")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(
                        ":version",
                        AttributeValue::N(version.to_string()),
                    ),
                None => put.condition_expression("attribute_not_exists(pk)"),
            };
            if put_if(put).await? {
                return Ok(next);
            }
        }
        Err(StoreError::Unavailable(
            "the published key set kept changing under us".into(),
        ))
    }
}

impl PublicKeyStore for DynamoSessionStore {
    async fn published_keys(&self) -> Result<Vec<PublishedKey>, StoreError> {
        // `keys` is a reserved word in expressions: named by a placeholder.
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(PUBLISHED_KEYS_PK.to_owned()))
            .projection_expression("#keys")
            .expression_attribute_names("#keys", PUBLISHED_KEYS_ATTRIBUTE)
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| unavailable(&err))?
            .item;
        Ok(item.as_ref().map(keys_from_item).unwrap_or_default())
    }

    async fn publish(
        &self,
        keys: &[KeyVersion],
        now: i64,
    ) -> Result<Vec<PublishedKey>, StoreError> {
        self.change_published(|published| merge_published(published, keys, now))
            .await
    }

    async fn unpublish_all_but(&self, kids: &[&str]) -> Result<(), StoreError> {
        self.change_published(|mut published| {
            published.retain(|p| kids.contains(&p.key.kid.as_str()));
            published
        })
        .await
        .map(|_| ())
    }
}
