//! The signing-key rotation function, driven as Secrets Manager drives it.

use serde_json::json;

use crate::runtime::{LambdaFunction, Outcome};

/// A signing-key secret before its first rotation: what the template creates.
pub const UNROTATED_SECRET: &str = r#"{"placeholder": "replaced by the first rotation"}"#;

/// Secrets Manager's four steps for `version` of the secret `arn`, in order,
/// each `times` in a row (they must be idempotent); every one must succeed.
pub async fn run_steps(rotation: &mut LambdaFunction, arn: &str, version: &str, times: usize) {
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        for _ in 0..times {
            let event = json!({"Step": step, "SecretId": arn, "ClientRequestToken": version});
            if let Outcome::Error(error) = rotation.invoke(event).await {
                panic!("{step}: {error}\n{}", rotation.logs.text());
            }
        }
    }
}
