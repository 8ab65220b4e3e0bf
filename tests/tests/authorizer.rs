//! The authorizer on DynamoDB Local: every row of the contract's "Authorizer"
//! section, in-process and as the release binary under the Lambda Runtime API,
//! and GET /me answering from the authorizer's context.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wxauth::aws::DynamoSessionStore;
use wxauth::handlers::authorizer::Authorizer;
use wxauth::runtime::deadline::Deadline;
use wxauth_tests::events::{
    AUTHORIZED_ROUTE_ARN, AUTHORIZED_STAGE_ARN, HttpEvent, authorizer_event,
};
use wxauth_tests::invoke::{call, invoke_event, logged_in, login_event};
use wxauth_tests::logs::{has_metric, metric_records};
use wxauth_tests::proxy::CountingProxy;
use wxauth_tests::runtime::{LambdaFunction, Outcome};
use wxauth_tests::world::World;

const METHOD_ARN: &str = AUTHORIZED_ROUTE_ARN;

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn answer(authorizer: &Authorizer<DynamoSessionStore>, event: Value) -> Value {
    let deadline = Deadline::after(Duration::from_secs(5));
    serde_json::to_value(
        authorizer
            .decide_answer(event, deadline)
            .await
            .expect("the table answers"),
    )
    .unwrap()
}

async fn is_allowed(authorizer: &Authorizer<DynamoSessionStore>, token: &str) -> bool {
    answer(authorizer, authorizer_event(Some(&bearer(token)))).await["isAuthorized"] == true
}

#[tokio::test]
async fn every_contract_row_on_dynamodb_local() {
    let world = World::new().await;
    let (login, check) = (world.login().await, world.check().await);
    let authorizer = Authorizer::new(world.store().await);

    // A token GET /session accepts: allowed, with who it is.
    let (code, issued) = world
        .wechat
        .issue_code_for("oAUTHZ0000000000000000000001", Some("uAUTHZ"));
    let login_answer = call(&login, login_event(&code)).await;
    let token = login_answer.body["token"].as_str().unwrap().to_owned();
    let allowed = answer(&authorizer, authorizer_event(Some(&bearer(&token)))).await;
    assert_eq!(allowed["isAuthorized"], true, "{allowed}");
    assert_eq!(allowed["context"]["openid"], issued.openid.as_str());
    assert_eq!(allowed["context"]["unionid"], "uAUTHZ");
    let expires_at = allowed["context"]["expiresAt"].as_i64().unwrap();
    let left = expires_at - wxauth::domain::time::epoch_seconds();
    assert!((590..=600).contains(&left), "{left}");

    // What GET /session answers 401 for is denied.
    for refused in [
        None,
        Some(token.clone()),
        Some(format!("Token {token}")),
        Some("Bearer short".to_owned()),
        Some(bearer(
            wxauth::domain::token::SessionToken::generate()
                .unwrap()
                .expose(),
        )),
    ] {
        let denied = answer(&authorizer, authorizer_event(refused.as_deref())).await;
        assert_eq!(denied, json!({"isAuthorized": false}), "{refused:?}");
    }

    // Expired but still in the table (TTL is off here, as in the service for hours).
    let (expired, _) = logged_in(&world, &login).await;
    let pk = hex::encode(Sha256::digest(expired.as_bytes()));
    let past = wxauth::domain::time::epoch_seconds() - 5;
    world
        .dynamodb
        .update_item()
        .table_name(&world.table)
        .key("pk", AttributeValue::S(pk.clone()))
        .update_expression("SET expiresAt = :past")
        .expression_attribute_values(":past", AttributeValue::N(past.to_string()))
        .send()
        .await
        .unwrap();
    assert!(
        world.item(&pk).await.is_some(),
        "the expired item is still there"
    );
    assert!(!is_allowed(&authorizer, &expired).await);

    // Logged out.
    let (logged_out, _) = logged_in(&world, &login).await;
    assert!(is_allowed(&authorizer, &logged_out).await);
    let answer_logout = call(
        &check,
        HttpEvent::new("DELETE", "/session").bearer(&logged_out),
    )
    .await;
    assert_eq!(answer_logout.status, 204);
    assert!(!is_allowed(&authorizer, &logged_out).await);

    // Revoked by a later login of the same user.
    let (code, _) = world.wechat.issue_code_for(&issued.openid, Some("uAUTHZ"));
    let later = call(&login, login_event(&code)).await;
    assert_eq!(later.status, 200);
    assert!(!is_allowed(&authorizer, &token).await);
    assert!(is_allowed(&authorizer, later.body["token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn rest_token_and_request_authorizers() {
    let world = World::new().await;
    let login = world.login().await;
    let authorizer = Authorizer::new(world.store().await);
    let (token, issued) = logged_in(&world, &login).await;
    let token_event = |value: &str| json!({"type": "TOKEN", "authorizationToken": value, "methodArn": METHOD_ARN});
    let request_event = |value: &str| {
        json!({
            "type": "REQUEST",
            "methodArn": METHOD_ARN,
            "resource": "/orders",
            "path": "/orders",
            "httpMethod": "GET",
            "headers": {"Authorization": value, "Host": "abc123.execute-api.us-east-1.amazonaws.com"},
            "multiValueHeaders": {"Authorization": [value]},
            "queryStringParameters": {},
            "pathParameters": {},
            "stageVariables": {},
            "requestContext": {"path": "/prod/orders", "accountId": "123456789012", "resourceId": "r", "stage": "prod", "requestId": "id", "resourcePath": "/orders", "httpMethod": "GET", "apiId": "abc123"}
        })
    };
    for event in [token_event(&bearer(&token)), request_event(&bearer(&token))] {
        let allowed = answer(&authorizer, event).await;
        assert_eq!(allowed["principalId"], issued.openid.as_str(), "{allowed}");
        let statement = &allowed["policyDocument"]["Statement"][0];
        assert_eq!(allowed["policyDocument"]["Version"], "2012-10-17");
        assert_eq!(
            (
                &statement["Action"],
                &statement["Effect"],
                &statement["Resource"]
            ),
            (
                &json!("execute-api:Invoke"),
                &json!("Allow"),
                &json!(AUTHORIZED_STAGE_ARN)
            )
        );
        assert_eq!(allowed["context"]["openid"], issued.openid.as_str());
    }
    for event in [token_event("Bearer nope"), request_event(&token)] {
        let denied = answer(&authorizer, event).await;
        assert_eq!(denied["principalId"], "anonymous");
        assert_eq!(denied["policyDocument"]["Statement"][0]["Effect"], "Deny");
        assert!(denied.get("context").is_none(), "{denied}");
    }
}

/// The release binary under the Runtime API emulator: allows, denies, survives
/// hostile events, and fails the invocation when the table cannot be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_binary_allows_denies_and_fails_on_an_outage() {
    let world = World::new().await;
    let login = world.login().await;
    let (token, issued) = logged_in(&world, &login).await;
    let env: Vec<(&str, String)> = world
        .function_env()
        .into_iter()
        .filter(|(name, _)| matches!(*name, "SESSION_TABLE" | "AWS_ENDPOINT_URL_DYNAMODB"))
        .collect();
    let mut authorizer = LambdaFunction::start("authorizer", &env).await;
    let Outcome::Response(allowed) = authorizer
        .invoke(authorizer_event(Some(&bearer(&token))))
        .await
    else {
        panic!("invocation error; logs:\n{}", authorizer.logs.text());
    };
    assert_eq!(allowed["isAuthorized"], true, "{allowed}");
    assert_eq!(allowed["context"]["openid"], issued.openid.as_str());
    for hostile in [
        json!(null),
        json!([1]),
        json!({"version": "2.0", "identitySource": 5}),
        json!("Bearer x"),
    ] {
        let Outcome::Response(denied) = authorizer.invoke(hostile.clone()).await else {
            panic!("{hostile}: invocation error");
        };
        assert!(
            denied["isAuthorized"] != true
                && denied["policyDocument"]["Statement"][0]["Effect"] != "Allow",
            "{hostile}: {denied}"
        );
    }
    assert!(authorizer.is_running());
    authorizer.stop().await;
    let logs = authorizer.logs.text();
    let records = metric_records(&logs);
    assert!(has_metric(
        &records,
        "AuthorizerDecisions",
        &[("Function", "authorizer"), ("Decision", "allow")]
    ));
    assert!(has_metric(
        &records,
        "AuthorizerDecisions",
        &[("Decision", "deny")]
    ));
    assert!(
        !logs.contains(&token) && !logs.contains(&issued.openid),
        "{logs}"
    );

    // The table unreachable: the invocation fails (API Gateway answers 500).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut env = env.clone();
    for (name, value) in env.iter_mut() {
        if *name == "AWS_ENDPOINT_URL_DYNAMODB" {
            *value = endpoint.clone();
        }
    }
    let mut cut_off = LambdaFunction::start("authorizer", &env).await;
    cut_off.timeout = Duration::from_secs(3);
    match cut_off
        .invoke(authorizer_event(Some(&bearer(&token))))
        .await
    {
        Outcome::Error(error) => assert!(!error.to_string().contains(&token), "{error}"),
        Outcome::Response(answer) => panic!("an outage answered {answer}"),
    }
    assert!(cut_off.is_running());
    cut_off.stop().await;
    assert!(has_metric(
        &metric_records(&cut_off.logs.text()),
        "AuthorizerErrors",
        &[]
    ));
}

/// One GetItem per request and no new connection, from the first request on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_get_item_per_request() {
    let world = World::new().await;
    let login = world.login().await;
    let (token, _) = logged_in(&world, &login).await;
    let dynamodb = CountingProxy::start(&world.standins.dynamodb).await;
    let env = vec![
        ("SESSION_TABLE", world.table.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.endpoint.clone()),
    ];
    let mut authorizer = LambdaFunction::start("authorizer", &env).await;
    authorizer
        .init_duration(Duration::from_secs(10))
        .await
        .expect("init finished");
    let after_init = dynamodb.counts();
    for _ in 0..10 {
        let Outcome::Response(answer) = authorizer
            .invoke(authorizer_event(Some(&bearer(&token))))
            .await
        else {
            panic!("invocation error");
        };
        assert_eq!(answer["isAuthorized"], true);
    }
    let Outcome::Response(_) = authorizer.invoke(authorizer_event(None)).await else {
        panic!("invocation error");
    };
    let counts = dynamodb.counts();
    assert_eq!(
        counts.op("GetItem") - after_init.op("GetItem"),
        10,
        "{:?}",
        counts.operations
    );
    assert_eq!(
        counts.operations.values().sum::<u64>() - after_init.operations.values().sum::<u64>(),
        10
    );
    assert_eq!(
        counts.connections, after_init.connections,
        "a request opened a connection"
    );
}

/// GET /me answers from the authorizer's context (payload 2.0: `.lambda`; REST:
/// the flat map), never from anything the client sends.
#[tokio::test]
async fn me_answers_from_the_authorizer_context() {
    let world = World::new().await;
    let (login, check) = (world.login().await, world.check().await);
    let (token, issued) = logged_in(&world, &login).await;

    let mut event = HttpEvent::new("GET", "/me")
        .bearer(&token)
        .header("x-openid", "oFORGED")
        .build();
    let live = wxauth::domain::time::epoch_seconds() + 600;
    let user_id = "u_AAAAAAAAAAAAAAAAAAAAAA";
    event["requestContext"]["authorizer"] = json!({"lambda": {"userId": user_id, "openid": issued.openid, "unionid": "uME", "expiresAt": live}});
    let answer = invoke_event(&check, &event, None).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(
        answer.body,
        json!({"userId": user_id, "openid": issued.openid, "unionid": "uME"})
    );
    // A cached Allow that outlived its session (or a context without expiresAt).
    let ended = wxauth::domain::time::epoch_seconds() - 1;
    for stale in [json!(ended), json!(ended.to_string()), Value::Null] {
        event["requestContext"]["authorizer"]["lambda"]["expiresAt"] = stale.clone();
        let answer = invoke_event(&check, &event, None).await;
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (401, Some("unauthorized")),
            "{stale}: {}",
            answer.raw
        );
    }

    let rest = json!({
        "resource": "/me",
        "path": "/me",
        "httpMethod": "GET",
        "headers": {"Authorization": bearer(&token), "Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {"Authorization": [bearer(&token)]},
        "requestContext": {
            "path": "/prod/me", "stage": "prod", "httpMethod": "GET", "requestId": "id",
            "resourcePath": "/me", "accountId": "123456789012", "apiId": "abc123", "identity": {},
            "authorizer": {"principalId": issued.openid, "userId": user_id, "openid": issued.openid, "expiresAt": live.to_string()}
        },
        "isBase64Encoded": false
    });
    let answer = invoke_event(&check, &rest, None).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(
        answer.body,
        json!({"userId": user_id, "openid": issued.openid})
    );
    let mut stale = rest.clone();
    stale["requestContext"]["authorizer"]["expiresAt"] = json!(ended.to_string());
    let answer = invoke_event(&check, &stale, None).await;
    assert_eq!(answer.status, 401, "{}", answer.raw);

    // A valid token and a forged header are not an authorizer's context.
    let event = HttpEvent::new("GET", "/me")
        .bearer(&token)
        .header("x-openid", "oFORGED")
        .build();
    let answer = invoke_event(&check, &event, None).await;
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (401, Some("unauthorized")),
        "{}",
        answer.raw
    );
    let answer = invoke_event(&check, &HttpEvent::new("POST", "/me").build(), None).await;
    assert_eq!(answer.status, 405);
}

/// The authorizer's role may read session items only (keys of 64 hex digits,
/// never a prefixed key such as the access token's) and of them only the
/// attributes template.yaml lists, with a projection (IAM refuses a GetItem
/// without one). DynamoDB Local enforces no IAM, so every GetItem the release
/// binary sends is checked here against the template's policy, and the
/// authorizer still allows and denies as before under that narrowed read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_reads_only_what_its_narrowed_policy_allows() {
    let template = wxauth_tests::template::resource_text("AuthorizerFunction");
    let allowed: Vec<String> = template
        .lines()
        .find_map(|line| line.trim().strip_prefix("dynamodb:Attributes: ["))
        .and_then(|rest| rest.strip_suffix(']'))
        .expect("the authorizer's dynamodb:Attributes in template.yaml")
        .split(',')
        .map(|name| name.trim().to_owned())
        .collect();
    let mut expected: Vec<String> = wxauth::aws::CALLER_ATTRIBUTES
        .iter()
        .map(|name| (*name).to_owned())
        .chain(["pk".to_owned()])
        .collect();
    expected.sort();
    let mut listed = allowed.clone();
    listed.sort();
    assert_eq!(
        listed, expected,
        "template.yaml and CALLER_ATTRIBUTES disagree"
    );

    let world = World::new().await;
    let login = world.login().await;
    let (token, issued) = logged_in(&world, &login).await;
    let proxy = wxauth_tests::proxy::DynamoDbProxy::start(&world.standins.dynamodb).await;
    let env = vec![
        ("SESSION_TABLE", world.table.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint.clone()),
    ];
    let mut authorizer = LambdaFunction::start("authorizer", &env).await;
    let allowed_answer = authorizer
        .invoke(authorizer_event(Some(&bearer(&token))))
        .await;
    let Outcome::Response(allowed_answer) = allowed_answer else {
        panic!("{allowed_answer:?}");
    };
    assert_eq!(allowed_answer["isAuthorized"], true, "{allowed_answer}");
    assert_eq!(allowed_answer["context"]["openid"], issued.openid.as_str());
    let unknown = wxauth::domain::token::SessionToken::generate().unwrap();
    let Outcome::Response(denied) = authorizer
        .invoke(authorizer_event(Some(&bearer(unknown.expose()))))
        .await
    else {
        panic!("the unknown token's answer was an error");
    };
    assert_eq!(denied, json!({"isAuthorized": false}));
    authorizer.stop().await;

    let reads = proxy.bodies("GetItem");
    assert!(reads.len() >= 2, "{reads:?}");
    for read in &reads {
        let pk = read["Key"]["pk"]["S"].as_str().unwrap_or_default();
        assert!(
            pk.len() == 64 && !pk.contains('#'),
            "a key outside dynamodb:LeadingKeys: {read}"
        );
        let names = &read["ExpressionAttributeNames"];
        let projected: Vec<String> = read["ProjectionExpression"]
            .as_str()
            .unwrap_or_else(|| panic!("a read without a projection: {read}"))
            .split(',')
            .map(|name| {
                let name = name.trim();
                names[name].as_str().unwrap_or(name).to_owned()
            })
            .collect();
        for name in &projected {
            assert!(
                allowed.contains(name),
                "{name} is outside dynamodb:Attributes: {read}"
            );
        }
        assert_eq!(read["ConsistentRead"], true, "{read}");
    }
    for operation in [
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "TransactWriteItems",
        "Scan",
        "Query",
    ] {
        assert_eq!(proxy.calls(operation), 0, "{operation}");
    }
}
