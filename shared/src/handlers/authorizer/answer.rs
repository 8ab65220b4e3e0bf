//! The authorizer's answers, in the contract's exact shape: a simple response
//! for an HTTP API, an IAM policy for the whole stage for a REST API.

use serde::Serialize;

use crate::domain::session::Caller;

/// An answer for API Gateway, in the shape its event asked for.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// HTTP API, payload 2.0, simple responses.
    Simple {
        #[serde(rename = "isAuthorized")]
        is_authorized: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        context: Option<Caller>,
    },
    /// REST API, TOKEN and REQUEST authorizers: an IAM policy.
    Policy {
        #[serde(rename = "principalId")]
        principal_id: String,
        #[serde(rename = "policyDocument")]
        policy_document: PolicyDocument,
        #[serde(skip_serializing_if = "Option::is_none")]
        context: Option<Caller>,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    version: &'static str,
    statement: [Statement; 1],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Statement {
    action: &'static str,
    effect: &'static str,
    resource: String,
}

impl Answer {
    pub fn is_allowed(&self) -> bool {
        match self {
            Self::Simple { is_authorized, .. } => *is_authorized,
            Self::Policy {
                policy_document, ..
            } => policy_document.statement[0].effect == "Allow",
        }
    }

    pub(super) fn simple(caller: Option<Caller>) -> Self {
        Self::Simple {
            is_authorized: caller.is_some(),
            context: caller,
        }
    }

    /// Allow or Deny `execute-api:Invoke` on every method and path of the stage
    /// the request is for: API Gateway caches one answer per token for the whole
    /// API, so an Allow for one method would refuse the token's next call to
    /// another. A method ARN without that shape allows nothing.
    pub(super) fn policy(caller: Option<Caller>, method_arn: Option<String>) -> Self {
        let (caller, resource) = match method_arn.as_deref().and_then(stage_resource) {
            Some(resource) => (caller, resource),
            None => (None, "*".to_owned()),
        };
        let (principal_id, effect) = match &caller {
            Some(caller) => (caller.openid.clone(), "Allow"),
            None => ("anonymous".to_owned(), "Deny"),
        };
        Self::Policy {
            principal_id,
            policy_document: PolicyDocument {
                version: "2012-10-17",
                statement: [Statement {
                    action: "execute-api:Invoke",
                    effect,
                    resource,
                }],
            },
            context: caller,
        }
    }
}

/// `arn:<partition>:execute-api:<region>:<account>:<apiId>/<stage>/*/*` from a
/// method ARN (`…:<apiId>/<stage>/<METHOD>/<path>`), or `None` when the ARN does
/// not have that shape.
pub fn stage_resource(method_arn: &str) -> Option<String> {
    let fields: Vec<&str> = method_arn.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = fields.as_slice() else {
        return None;
    };
    let mut path = resource.splitn(4, '/');
    let (api_id, stage, method) = (path.next()?, path.next()?, path.next()?);
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'$')
    };
    let well_formed = *arn == "arn"
        && partition.starts_with("aws")
        && word(partition)
        && *service == "execute-api"
        && word(region)
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && word(api_id)
        && word(stage)
        && (word(method) || method == "*")
        && path.next().is_some();
    well_formed
        .then(|| format!("{arn}:{partition}:{service}:{region}:{account}:{api_id}/{stage}/*/*"))
}
