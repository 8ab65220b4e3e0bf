//! Table items as JSON (DynamoDB's own form, `{"S": ..}`, `{"N": ..}`,
//! `{"M": ..}`), and moved in time: what a fixture of items written by an
//! earlier release is stored as, and how it is loaded as if written just now.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value, json};

pub type Item = HashMap<String, AttributeValue>;

/// The attributes that hold a time (epoch seconds, or milliseconds where the
/// value says so); maps named `sessions` and `families` hold times as values.
const TIMES: [&str; 9] = [
    "expiresAt",
    "createdAt",
    "lastLoginAt",
    "phoneBoundAt",
    "sessionKeyExpiresAt",
    "spentAt",
    "linkedAt",
    "publishedAt",
    "iat",
];
const MAPS_OF_TIMES: [&str; 2] = ["sessions", "families"];

pub fn to_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::M(map) => {
            let fields: Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
            json!({ "M": fields })
        }
        AttributeValue::L(list) => json!({"L": list.iter().map(to_json).collect::<Vec<_>>()}),
        other => panic!("a fixture holds no {other:?}"),
    }
}

pub fn from_json(value: &Value) -> AttributeValue {
    let (kind, inner) = value
        .as_object()
        .and_then(|object| object.iter().next())
        .expect("a typed attribute value");
    match kind.as_str() {
        "S" => AttributeValue::S(inner.as_str().expect("S").to_owned()),
        "N" => AttributeValue::N(inner.as_str().expect("N").to_owned()),
        "BOOL" => AttributeValue::Bool(inner.as_bool().expect("BOOL")),
        "NULL" => AttributeValue::Null(true),
        "M" => AttributeValue::M(
            inner
                .as_object()
                .expect("M")
                .iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect(),
        ),
        "L" => AttributeValue::L(inner.as_array().expect("L").iter().map(from_json).collect()),
        other => panic!("unknown attribute type {other}"),
    }
}

pub fn item_to_json(item: &Item) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
}

pub fn item_from_json(value: &Value) -> Item {
    value
        .as_object()
        .expect("an item")
        .iter()
        .map(|(k, v)| (k.clone(), from_json(v)))
        .collect()
}

/// A time moved by `seconds`: epoch seconds, or milliseconds (a value past
/// the year 5138 in seconds is milliseconds).
fn moved(number: &str, seconds: i64) -> String {
    let value: i64 = number.parse().expect("a whole number");
    if value > 100_000_000_000 {
        (value + seconds * 1000).to_string()
    } else {
        (value + seconds).to_string()
    }
}

/// `item` with every time in it moved by `seconds`.
pub fn shifted(item: &Item, seconds: i64) -> Item {
    fn shift(name: &str, value: &AttributeValue, seconds: i64, in_times: bool) -> AttributeValue {
        match value {
            AttributeValue::N(n) if in_times || TIMES.contains(&name) => {
                AttributeValue::N(moved(n, seconds))
            }
            AttributeValue::M(map) => {
                let times = MAPS_OF_TIMES.contains(&name);
                AttributeValue::M(
                    map.iter()
                        .map(|(k, v)| (k.clone(), shift(k, v, seconds, times)))
                        .collect(),
                )
            }
            other => other.clone(),
        }
    }
    item.iter()
        .map(|(name, value)| (name.clone(), shift(name, value, seconds, false)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_and_move_in_time() {
        let item: Item = HashMap::from([
            ("pk".into(), AttributeValue::S("account#o1".into())),
            ("expiresAt".into(), AttributeValue::N("1000".into())),
            ("version".into(), AttributeValue::N("3".into())),
            (
                "sessions".into(),
                AttributeValue::M(HashMap::from([(
                    "k".into(),
                    AttributeValue::N("700".into()),
                )])),
            ),
            (
                "keys".into(),
                AttributeValue::M(HashMap::from([(
                    "kid".into(),
                    AttributeValue::M(HashMap::from([(
                        "publishedAt".into(),
                        AttributeValue::N("1795334400000".into()),
                    )])),
                )])),
            ),
        ]);
        assert_eq!(item_from_json(&item_to_json(&item)), item);
        let later = shifted(&item, 10);
        assert_eq!(later["expiresAt"], AttributeValue::N("1010".into()));
        assert_eq!(later["version"], AttributeValue::N("3".into()));
        assert_eq!(
            later["sessions"].as_m().unwrap()["k"],
            AttributeValue::N("710".into())
        );
        assert_eq!(
            later["keys"].as_m().unwrap()["kid"].as_m().unwrap()["publishedAt"],
            AttributeValue::N("1795334410000".into())
        );
    }
}
