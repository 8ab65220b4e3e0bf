//! Writes `tests/fixtures/single-app.json`: what a release from before
//! several apps wrote to its tables, for `tests/tests/upgrade.rs` to load
//! under the current release.
//!
//!   WXAUTH_BIN_DIR=<that release's release binaries> WXAUTH_FIXTURE_RELEASE=<what it is> \
//!   cargo run -p wxauth-tests --bin single_app_fixture -- tests/fixtures/single-app.json
//!
//! With DynamoDB Local and moto running (`WXAUTH_TEST_*`, as for the tests).
//! The old binaries do everything a user and an operator would: the signing
//! key's first rotation, a JWT-mode login of a user whose mini-program gives
//! a unionid (phone number bound), an opaque-mode login of one without, each
//! with a refresh token. The file holds both tables' items, the tokens, and
//! the test signing key (a throwaway made by the old rotation function).

use serde_json::{Value, json};
use wxauth::domain::time::epoch_seconds;
use wxauth_tests::events::HttpEvent;
use wxauth_tests::fixture::item_to_json;
use wxauth_tests::invoke::login_event;
use wxauth_tests::rotation::{UNROTATED_SECRET, run_steps};
use wxauth_tests::runtime::LambdaFunction;
use wxauth_tests::world::{APPID, World, encrypt_for, phone_plaintext};

pub const ISSUER: &str = "https://auth.wxauth.test";
const WITH_UNIONID: (&str, &str) = ("oLEGACYU000000000000000001", "uLEGACYUNION000000000000001");
const WITHOUT_UNIONID: &str = "oLEGACYN000000000000000001";
/// The signing key's version: the first rotation's token.
const KEY_VERSION: &str = "00000000-f1c5-4000-8000-000000000001";

#[tokio::main]
async fn main() {
    let out = std::env::args().nth(1).expect("the fixture's path");
    let world = World::new().await;
    let arn = world.standins.create_secret(UNROTATED_SECRET).await;
    let mut env = world.function_env();
    env.push(("ISSUER", ISSUER.to_owned()));
    let mut signing_env = env.clone();
    signing_env.push(("SIGNING_KEY_SECRET_ID", arn.clone()));
    let mut rotation = LambdaFunction::start("rotate-signing-key", &signing_env).await;
    run_steps(&mut rotation, &arn, KEY_VERSION, 1).await;
    rotation.stop().await;

    let mut jwt_login = LambdaFunction::start("login", &signing_env).await;
    let (code, issued) = world
        .wechat
        .issue_code_for(WITH_UNIONID.0, Some(WITH_UNIONID.1));
    let (status, _, with_unionid) = jwt_login.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "{with_unionid}");
    jwt_login.stop().await;
    let mut phone = LambdaFunction::start("decrypt-phone", &env).await;
    let payload = encrypt_for(&issued, &phone_plaintext(APPID, "13811112222"));
    let bound = phone
        .call(
            HttpEvent::new("POST", "/phone")
                .bearer(with_unionid["token"].as_str().expect("token"))
                .json(&payload)
                .build(),
        )
        .await;
    assert_eq!(bound.0, 200, "{}", bound.2);
    phone.stop().await;

    let mut opaque_login = LambdaFunction::start("login", &env).await;
    let (code, _) = world.wechat.issue_code_for(WITHOUT_UNIONID, None);
    let (status, _, without_unionid) = opaque_login.call(login_event(&code).build()).await;
    assert_eq!(status, 200, "{without_unionid}");
    opaque_login.stop().await;

    let signing_key = world
        .standins
        .secrets_client()
        .await
        .get_secret_value()
        .secret_id(&arn)
        .version_id(KEY_VERSION)
        .send()
        .await
        .expect("the signing key")
        .secret_string()
        .expect("a SecretString")
        .to_owned();
    let items = |table: String| {
        let world = &world;
        async move {
            world
                .scan(&table)
                .await
                .iter()
                .map(item_to_json)
                .collect::<Vec<Value>>()
        }
    };
    let fixture = json!({
        "writtenBy": std::env::var("WXAUTH_FIXTURE_RELEASE").unwrap_or_else(|_| "set WXAUTH_FIXTURE_RELEASE to the release that wrote it".into()),
        "capturedAt": epoch_seconds(),
        "appid": APPID,
        "issuer": ISSUER,
        "signingKeySecret": signing_key,
        "withUnionid": {
            "openid": WITH_UNIONID.0,
            "unionid": WITH_UNIONID.1,
            "login": with_unionid,
        },
        "withoutUnionid": {
            "openid": WITHOUT_UNIONID,
            "login": without_unionid,
        },
        "sessionTable": items(world.table.clone()).await,
        "loginLogTable": items(world.log_table.clone()).await,
    });
    let text = serde_json::to_string_pretty(&fixture).expect("JSON");
    std::fs::write(&out, text + "\n").expect("the fixture written");
    eprintln!("wrote {out}");
}
