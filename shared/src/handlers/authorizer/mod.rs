//! The login state for the team's own APIs: API Gateway's Lambda authorizer.
//!
//! It answers "may this request pass, and who is it?" with exactly the rules of
//! `GET /session` (Bearer, token shape, the SHA-256 key, a consistent read,
//! expiry decided here, logout and one-session-per-user revocation honoured).
//! A table that cannot be read in time is an error, never a denial: a client
//! must not be told to log in again because the table is slow.
//!
//! Events are read with aws_lambda_events' authorizer types. The answers are
//! written in the contract's exact shape (`../shared/spec/API.md`, Authorizer):
//! aws_lambda_events' response types would add `"context": null` to a denial
//! and write `Action`/`Resource` as lists.

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequest, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayV2CustomAuthorizerV2Request,
};
use serde_json::Value;
use tracing::{info, warn};

use crate::domain::redact::mask_openid;
use crate::domain::session::Caller;
use crate::domain::token::Bearer;
use crate::edge::events::EventHandler;
use crate::ports::errors::Upstream;
use crate::ports::errors::UpstreamError;
use crate::ports::keys::PublicKeyStore;
use crate::ports::sessions::SessionStore;
use crate::runtime::deadline::Deadline;
use crate::runtime::metrics;
use crate::runtime::metrics::Metric;
use crate::services::access::{Refused, TokenCheck};
use crate::services::sessions::live_caller;

mod answer;

pub use answer::{Answer, PolicyDocument, stage_resource};

pub struct Authorizer<S> {
    store: S,
    tokens: TokenCheck,
}

/// The event kinds API Gateway sends a Lambda authorizer.
enum Event {
    HttpApi(Box<ApiGatewayV2CustomAuthorizerV2Request>),
    RestToken(ApiGatewayCustomAuthorizerRequest),
    RestRequest(Box<ApiGatewayCustomAuthorizerRequestTypeRequest>),
    /// Not an authorizer event, or one whose fields have the wrong types.
    Unreadable {
        rest: bool,
        method_arn: Option<String>,
    },
}

impl Event {
    fn read(event: Value) -> Self {
        let text = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
        let (version, kind, method_arn) = (text("version"), text("type"), text("methodArn"));
        let rest = method_arn.is_some() || version.as_deref() != Some("2.0");
        let parsed = match (version.as_deref(), kind.as_deref()) {
            (Some("2.0"), _) => serde_json::from_value(event)
                .ok()
                .map(|e| Self::HttpApi(Box::new(e))),
            (_, Some("TOKEN")) => serde_json::from_value(event).ok().map(Self::RestToken),
            (_, Some("REQUEST")) => serde_json::from_value(event)
                .ok()
                .map(|e| Self::RestRequest(Box::new(e))),
            _ => None,
        };
        parsed.unwrap_or(Self::Unreadable { rest, method_arn })
    }
}

impl<S: SessionStore + PublicKeyStore> Authorizer<S> {
    pub fn new(store: S) -> Self {
        Self {
            store,
            tokens: TokenCheck::default(),
        }
    }

    /// How JWTs are checked (`ISSUER`, `AUDIENCE`).
    pub fn with_token_check(mut self, tokens: TokenCheck) -> Self {
        self.tokens = tokens;
        self
    }

    pub async fn warm_up(&self) {
        self.store.warm_up(crate::ports::errors::Access::Read).await;
    }

    /// Who holds the token in `authorization` (an `Authorization` header's
    /// value), if `GET /session` would accept it; `None` where it would answer 401.
    pub async fn decide(
        &self,
        authorization: Option<&str>,
        deadline: Deadline,
    ) -> Result<Option<Caller>, UpstreamError> {
        let Ok(bearer) = Bearer::from_header(authorization) else {
            return Ok(None);
        };
        let target = match deadline
            .run(self.tokens.session_ref(&self.store, &bearer))
            .await
        {
            Some(Ok(target)) => target,
            Some(Err(Refused::Jwt(_))) => return Ok(None),
            Some(Err(Refused::Unavailable)) | None => {
                return Err(UpstreamError::Unavailable(Upstream::SessionTable));
            }
        };
        let caller = live_caller(&self.store, &target.key, deadline).await?;
        Ok(caller.filter(|caller| {
            target
                .expected_user
                .as_ref()
                .is_none_or(|user| *user == caller.user_id)
        }))
    }

    /// Answers one authorizer event. Anything unreadable is denied.
    pub async fn decide_answer(
        &self,
        event: Value,
        deadline: Deadline,
    ) -> Result<Answer, UpstreamError> {
        let answer = self.decide_event(event, deadline).await;
        match &answer {
            Ok(answer) => {
                let decision = if answer.is_allowed() { "allow" } else { "deny" };
                metrics::count(Metric::AuthorizerDecisions, &[("Decision", decision)]);
            }
            Err(err) => {
                warn!(error = %err, "authorizer could not read the session table; failing the invocation");
                metrics::count(Metric::AuthorizerErrors, &[]);
            }
        }
        answer
    }

    async fn decide_event(
        &self,
        event: Value,
        deadline: Deadline,
    ) -> Result<Answer, UpstreamError> {
        let answer = match Event::read(event) {
            Event::HttpApi(event) => {
                // identitySource[0] is the Authorization header's value.
                let authorization = match event.identity_source.as_deref() {
                    Some([first, ..]) => Some(first.clone()),
                    _ => header(&event.headers),
                };
                Answer::simple(self.decide(authorization.as_deref(), deadline).await?)
            }
            Event::RestToken(event) => {
                let caller = self
                    .decide(event.authorization_token.as_deref(), deadline)
                    .await?;
                Answer::policy(caller, event.method_arn)
            }
            Event::RestRequest(event) => {
                let authorization =
                    header(&event.headers).or_else(|| header(&event.multi_value_headers));
                let caller = self.decide(authorization.as_deref(), deadline).await?;
                Answer::policy(caller, event.method_arn)
            }
            Event::Unreadable { rest, method_arn } => {
                info!("authorizer event unreadable; denied");
                if rest {
                    Answer::policy(None, method_arn)
                } else {
                    Answer::simple(None)
                }
            }
        };
        match &answer {
            Answer::Simple {
                context: Some(caller),
                ..
            }
            | Answer::Policy {
                context: Some(caller),
                ..
            } => info!(openid = %mask_openid(&caller.openid), "authorizer allowed"),
            _ => info!("authorizer denied"),
        }
        Ok(answer)
    }
}

/// The Authorization header, whatever its case.
fn header(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// On the Lambda Runtime API: a table that cannot be read in time fails the
/// invocation (API Gateway then answers 500): an outage is not a reason to
/// send the user back to log in.
impl<S: SessionStore + PublicKeyStore> EventHandler for Authorizer<S> {
    async fn answer(&self, event: Value, deadline: Deadline) -> Result<Value, String> {
        let answer = self
            .decide_answer(event, deadline)
            .await
            .map_err(|err| err.to_string())?;
        serde_json::to_value(answer).map_err(|err| err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::domain::account::UserId;
    use crate::domain::redact::SessionKey;
    use crate::domain::session::Session;
    use crate::domain::time::epoch_seconds;
    use crate::domain::token::SessionToken;
    use crate::domain::token::TokenKey;
    use crate::ports::errors::StoreError;
    use crate::ports::memory::MemorySessionStore;
    use crate::ports::sessions::{LoginOutcome, LoginWrite, NewAccount};
    use crate::ports::sessions::{LoginStore, RefreshStore};

    const METHOD_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/orders";
    /// The whole stage: what a cached answer must cover.
    const STAGE_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*";

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    /// Logs `session` in through the store; the token.
    async fn log_in(store: &MemorySessionStore, session: &Session, single: bool) -> SessionToken {
        let token = SessionToken::generate().unwrap();
        let key = token.key();
        let write = LoginWrite {
            key: &key,
            session,
            default_app: true,
            single_session: single,
            log: None,
            refresh: None,
            new_account: NewAccount::Create { risk_rank: None },
        };
        store.login(&write).await.unwrap();
        token
    }

    fn session(openid: &str, unionid: Option<&str>, expires_in: i64) -> Session {
        let now = epoch_seconds();
        Session {
            user_id: UserId::generate().unwrap(),
            appid: crate::domain::app::AppId::parse("wx1111111111111111"),
            openid: openid.into(),
            unionid: unionid.map(str::to_owned),
            session_key: Some(SessionKey::new("AAAAAAAAAAAAAAAAAAAAAA==")),
            session_key_expires_at: None,
            family: None,
            created_at: now,
            expires_at: now + expires_in,
        }
    }

    /// An authorizer over a memory store holding one session per `sessions` entry.
    async fn with_sessions(
        sessions: &[Session],
    ) -> (Authorizer<Arc<MemorySessionStore>>, Vec<String>) {
        let store = Arc::new(MemorySessionStore::new());
        let mut tokens = Vec::new();
        for session in sessions {
            let token = store.insert_new(session.clone()).unwrap();
            tokens.push(token.expose().to_owned());
        }
        (Authorizer::new(store), tokens)
    }

    fn http_api(authorization: Option<&str>) -> Value {
        let mut event = json!({
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": METHOD_ARN,
            "routeKey": "GET /orders",
            "rawPath": "/orders",
            "rawQueryString": "",
            "headers": {},
            "requestContext": {"http": {"method": "GET", "path": "/orders"}, "routeKey": "GET /orders", "stage": "$default"}
        });
        if let Some(value) = authorization {
            event["identitySource"] = json!([value]);
            event["headers"]["authorization"] = json!(value);
        }
        event
    }

    fn rest_token(authorization: &str) -> Value {
        json!({"type": "TOKEN", "authorizationToken": authorization, "methodArn": METHOD_ARN})
    }

    fn rest_request(header: &str, authorization: &str) -> Value {
        json!({
            "type": "REQUEST",
            "methodArn": METHOD_ARN,
            "resource": "/orders",
            "path": "/orders",
            "httpMethod": "GET",
            "headers": {header: authorization},
            "requestContext": {"stage": "prod", "httpMethod": "GET"}
        })
    }

    async fn answer(authorizer: &Authorizer<Arc<MemorySessionStore>>, event: Value) -> Value {
        serde_json::to_value(authorizer.decide_answer(event, deadline()).await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn http_api_simple_responses() {
        let (authorizer, tokens) = with_sessions(&[
            session("oALICE", Some("uALICE"), 600),
            session("oBOB", None, 600),
        ])
        .await;
        let allowed = answer(
            &authorizer,
            http_api(Some(&format!("Bearer {}", tokens[0]))),
        )
        .await;
        let expires_at = allowed["context"]["expiresAt"].as_i64().unwrap();
        assert!(expires_at > epoch_seconds());
        let user_id = allowed["context"]["userId"].as_str().unwrap();
        assert!(UserId::parse(user_id).is_some(), "{allowed}");
        assert_eq!(
            allowed,
            json!({"isAuthorized": true, "context": {"userId": user_id, "appid": "wx1111111111111111", "openid": "oALICE", "unionid": "uALICE", "expiresAt": expires_at}})
        );
        // unionid only when known.
        let bob = answer(
            &authorizer,
            http_api(Some(&format!("bearer  {} ", tokens[1]))),
        )
        .await;
        assert_eq!(bob["isAuthorized"], true);
        assert_eq!(bob["context"].as_object().unwrap().len(), 4, "{bob}");
        for refused in [
            None,
            Some(tokens[0].clone()),
            Some(format!("Basic {}", tokens[0])),
            Some("Bearer abc".into()),
            Some(format!("Bearer {}x", tokens[0])),
            Some(format!(
                "Bearer {}",
                SessionToken::generate().unwrap().expose()
            )),
        ] {
            let denied = answer(&authorizer, http_api(refused.as_deref())).await;
            assert_eq!(denied, json!({"isAuthorized": false}), "{refused:?}");
        }
    }

    #[tokio::test]
    async fn the_token_comes_from_identity_source_else_the_header_in_any_case() {
        let (authorizer, tokens) = with_sessions(&[session("oALICE", None, 600)]).await;
        let bearer = format!("Bearer {}", tokens[0]);
        let mut event = http_api(None);
        event["headers"] = json!({"AuThOrIzAtIoN": bearer});
        assert_eq!(
            answer(&authorizer, event.clone()).await["isAuthorized"],
            true
        );
        // identitySource wins over the headers.
        event["identitySource"] = json!(["Bearer nonsense"]);
        assert_eq!(answer(&authorizer, event).await["isAuthorized"], false);
    }

    #[tokio::test]
    async fn expired_logged_out_and_revoked_sessions_are_refused() {
        let store = Arc::new(MemorySessionStore::new());
        let authorizer = Authorizer::new(Arc::clone(&store));
        let expired = log_in(&store, &session("oOLD", None, -1), false).await;
        let logged_out = log_in(&store, &session("oOUT", None, 600), false).await;
        store.delete(&logged_out.key()).await.unwrap();
        let first = log_in(&store, &session("oONE", None, 600), true).await;
        let second = log_in(&store, &session("oONE", None, 600), true).await;
        for token in [&expired, &logged_out, &first] {
            let bearer = format!("Bearer {}", token.expose());
            assert_eq!(authorizer.decide(Some(&bearer), deadline()).await, Ok(None));
        }
        let bearer = format!("Bearer {}", second.expose());
        assert_eq!(
            authorizer
                .decide(Some(&bearer), deadline())
                .await
                .unwrap()
                .map(|c| c.openid),
            Some("oONE".into())
        );
    }

    #[tokio::test]
    async fn rest_token_and_request_authorizers_answer_a_policy() {
        let (authorizer, tokens) = with_sessions(&[session("oALICE", Some("uALICE"), 600)]).await;
        let bearer = format!("Bearer {}", tokens[0]);
        for event in [
            rest_token(&bearer),
            rest_request("Authorization", &bearer),
            rest_request("authorization", &bearer),
        ] {
            let allowed = answer(&authorizer, event).await;
            assert_eq!(allowed["principalId"], "oALICE", "{allowed}");
            assert_eq!(
                allowed["policyDocument"],
                json!({"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": STAGE_ARN}]})
            );
            assert_eq!(allowed["context"]["openid"], "oALICE");
            assert_eq!(allowed["context"]["unionid"], "uALICE");
        }
        for event in [
            rest_token("Bearer nope"),
            rest_token(""),
            rest_request("x-other", &bearer),
        ] {
            let denied = answer(&authorizer, event).await;
            assert_eq!(
                denied,
                json!({"principalId": "anonymous", "policyDocument": {"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": STAGE_ARN}]}})
            );
        }
    }

    #[test]
    fn the_policy_covers_the_stage_and_only_a_method_arn_gives_one() {
        for (method_arn, stage) in [
            (METHOD_ARN, Some(STAGE_ARN)),
            (
                "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/orders/7/items",
                Some(STAGE_ARN),
            ),
            (
                "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/",
                Some(STAGE_ARN),
            ),
            (
                "arn:aws-cn:execute-api:cn-north-1:123456789012:k9/v1/*/orders",
                Some("arn:aws-cn:execute-api:cn-north-1:123456789012:k9/v1/*/*"),
            ),
            (
                "arn:aws:execute-api:us-east-1:123456789012:abc123/prod",
                None,
            ),
            (
                "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET",
                None,
            ),
            (
                "arn:aws:execute-api:us-east-1:12345:abc123/prod/GET/orders",
                None,
            ),
            (
                "arn:aws:execute-api:us-east-1:123456789012:abc*/prod/GET/x",
                None,
            ),
            (
                "arn:aws:execute-api:us-east-1:123456789012:abc123//GET/x",
                None,
            ),
            ("arn:aws:s3:us-east-1:123456789012:abc123/prod/GET/x", None),
            ("", None),
        ] {
            assert_eq!(stage_resource(method_arn).as_deref(), stage, "{method_arn}");
        }
    }

    #[tokio::test]
    async fn hostile_events_never_allow() {
        let (authorizer, tokens) = with_sessions(&[session("oALICE", None, 600)]).await;
        let bearer = format!("Bearer {}", tokens[0]);
        for event in [
            json!(null),
            json!([bearer]),
            json!(bearer),
            json!({}),
            json!({"authorizationToken": bearer}),
            json!({"type": "TOKEN", "authorizationToken": bearer}),
            json!({"type": "TOKEN", "authorizationToken": bearer, "methodArn": ""}),
            json!({"type": "TOKEN", "authorizationToken": bearer, "methodArn": "*"}),
            json!({"type": "TOKEN", "authorizationToken": bearer, "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123"}),
            json!({"type": "TOKEN", "authorizationToken": bearer, "methodArn": "arn:aws:execute-api:us-east-1:123456789012:*/prod/GET/orders"}),
            json!({"type": "TOKEN", "authorizationToken": bearer, "methodArn": "arn:aws:lambda:us-east-1:123456789012:abc123/prod/GET/orders"}),
            json!({"type": "TOKEN", "authorizationToken": 7, "methodArn": METHOD_ARN}),
            json!({"type": "REQUEST", "methodArn": METHOD_ARN, "headers": "Authorization"}),
            json!({"version": "2.0", "type": "REQUEST", "identitySource": 5}),
            json!({"version": "2.0", "type": "REQUEST", "identitySource": [bearer]}),
            json!({"version": "2.0", "identitySource": [7], "requestContext": {}}),
        ] {
            let answer = authorizer
                .decide_answer(event.clone(), deadline())
                .await
                .unwrap();
            assert!(!answer.is_allowed(), "{event} was allowed: {answer:?}");
        }
    }

    /// A table that cannot be read.
    struct DownStore;

    impl SessionStore for DownStore {
        async fn get(&self, _: &TokenKey) -> Result<Option<Session>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }

        async fn delete(&self, _: &TokenKey) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
    }

    impl LoginStore for DownStore {
        async fn login(&self, _: &LoginWrite<'_>) -> Result<LoginOutcome, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
    }

    impl RefreshStore for DownStore {
        async fn logout(&self, _: &TokenKey, _: &Session) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }

        async fn refresh(
            &self,
            _: &crate::ports::sessions::RefreshWrite<'_>,
        ) -> Result<crate::ports::sessions::RefreshOutcome, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
    }

    impl PublicKeyStore for DownStore {
        async fn published_keys(
            &self,
        ) -> Result<Vec<crate::domain::jwt::PublishedKey>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn publish(
            &self,
            _: &[crate::domain::jwt::KeyVersion],
            _: i64,
        ) -> Result<Vec<crate::domain::jwt::PublishedKey>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn unpublish_all_but(&self, _: &[&str]) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
    }

    #[tokio::test]
    async fn an_outage_is_an_error_not_a_denial() {
        let authorizer = Authorizer::new(DownStore);
        let bearer = format!("Bearer {}", SessionToken::generate().unwrap().expose());
        assert!(
            authorizer
                .decide_answer(http_api(Some(&bearer)), deadline())
                .await
                .is_err()
        );
        assert!(
            authorizer
                .decide_answer(rest_token(&bearer), deadline())
                .await
                .is_err()
        );
        // No token: nothing to look up, so a denial without asking the table.
        let denied = authorizer
            .decide_answer(http_api(None), deadline())
            .await
            .unwrap();
        assert!(!denied.is_allowed());
    }
}
