//! `cargo run -p wxauth-local`: every route of the API on 127.0.0.1:3000 (`PORT`
//! overrides), through the same handlers as the Lambda functions, with sessions
//! in process memory. No AWS account, no Docker, no Java.
//!
//! With `WECHAT_APPSECRET` set (and `WECHAT_APPS` or `WECHAT_APPID`) it talks
//! to the real WeChat API (`WECHAT_API_BASE` overrides the base URL); without
//! it it runs the WeChat simulator, with two mini-programs and an `oauth` app
//! bound to one Open Platform account (or the apps `WECHAT_APPS` lists), and
//! serves `POST /dev/phone-payload` and `POST /dev/user-info`. Phone by code
//! and `?verify=wechat` work in both modes (the real one fetches an access
//! token with the appsecret).

mod dev_routes;
mod examples;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::{MethodRouter, any};
use wechat_sim::{SimApp, UnknownCodes, WeChatSim};
use wxauth::domain::app::{AppKind, Apps};
use wxauth::domain::jwt::{DEFAULT_AUDIENCE, JwtSettings, Signer, SigningKey, generate_key};
use wxauth::domain::login_log::DEFAULT_RETENTION_DAYS;
use wxauth::domain::redact::AppSecret;
use wxauth::domain::refresh::RefreshSettings;
use wxauth::domain::risk::RiskPolicy;
use wxauth::edge::error::ApiError;
use wxauth::edge::request::{ApiRequest, ApiResponse};
use wxauth::edge::routes::{Handler, Route};
use wxauth::edge::{checked, respond, respond_with};
use wxauth::handlers::authorizer::Authorizer;
use wxauth::handlers::{CheckSession, DecryptPhone, LogSettings, Login, LoginSettings};
use wxauth::ports::memory::MemorySessionStore;
use wxauth::ports::memory::MemoryTokenCache;
use wxauth::ports::secrets::{AppSecrets, StaticSecrets};
use wxauth::runtime::config::{LocalConfig, ProcessEnv};
use wxauth::runtime::startup::{init_logging, or_exit};
use wxauth::services::access::TokenCheck;
use wxauth::services::issuer::JwtIssuer;
use wxauth::wechat::access_token::AccessTokens;
use wxauth::wechat::{HttpWeChat, RetryPolicy};

/// The apps the simulator serves by default: two mini-programs and an
/// official account's H5 pages (`oauth`), bound to one Open Platform account
/// so that one person is one account across them. Every app's appsecret is
/// `SIMULATOR_SECRET`.
const SIMULATOR_APPS: &str = "wx0000000000000000,wx0000000000000001,wx0000000000000002:oauth";
const SIMULATOR_SECRET: &str = "simulated";

type Store = Arc<MemorySessionStore>;
type Tokens = AccessTokens<Arc<MemoryTokenCache>, HttpWeChat, StaticSecrets>;

pub struct App {
    login: Login<Store, HttpWeChat, StaticSecrets, Signer>,
    phone: DecryptPhone<Store, Tokens>,
    check: CheckSession<Store, Tokens>,
    authorizer: Authorizer<Store>,
    store: Store,
    /// The dev routes check tokens as the product's routes do.
    tokens: TokenCheck,
    simulated: bool,
    /// With the simulator and an `oauth` app: the H5 example, served.
    h5: Option<examples::H5Example>,
}

/// Every route of the table, each served by the handler its function runs.
impl Handler for App {
    fn serves(&self, _: Route) -> bool {
        true
    }

    async fn handle(&self, route: Route, request: ApiRequest) -> ApiResponse {
        match route {
            Route::Login | Route::Refresh => self.login.handle(route, request).await,
            Route::Phone | Route::OpenData => self.phone.handle(route, request).await,
            Route::Session | Route::Account | Route::Jwks | Route::OpenIdConfiguration => {
                self.check.handle(route, request).await
            }
            // What API Gateway does before GET /me reaches check-session: the
            // authorizer's decision on the Authorization header, as its context.
            Route::Me => {
                let mut request = request;
                let authorization = request.header("authorization").map(str::to_owned);
                match self
                    .authorizer
                    .decide(authorization.as_deref(), request.deadline)
                    .await
                {
                    Ok(caller) => request.caller = caller,
                    Err(err) => return ApiError::from(err).into_response(),
                }
                self.check.handle(route, request).await
            }
        }
    }
}

/// The edge's routes for everything, plus the simulator's dev routes.
fn router(mut app: App) -> Router {
    let mut router = Router::new();
    if let Some(example) = app.h5.take() {
        router = examples::routes(router, example);
    }
    let app = Arc::new(app);
    if app.simulated {
        router = router
            .route(
                "/dev/phone-payload",
                dev_route(&app, |app, request| async move {
                    dev_routes::phone_payload(&app.store, &app.tokens, request).await
                }),
            )
            .route(
                "/dev/user-info",
                dev_route(&app, |app, request| async move {
                    dev_routes::user_info(&app.store, &app.tokens, request).await
                }),
            );
    }
    router.fallback(move |request: Request| async move { respond(&*app, request).await })
}

/// A POST-only route of the local server's own, through the edge's conversion
/// and checks like every other route.
fn dev_route<F, Fut>(app: &Arc<App>, serve: F) -> MethodRouter
where
    F: Fn(Arc<App>, ApiRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ApiResponse> + Send + 'static,
{
    let app = Arc::clone(app);
    any(move |request: Request| {
        let (app, serve) = (Arc::clone(&app), serve.clone());
        async move {
            respond_with(request, |request| {
                checked("POST", request, |request| serve(app, request))
            })
            .await
        }
    })
}

/// The real WeChat, or the simulator on a loopback port: either way the
/// product's own HTTP client talks to it, as in the functions.
/// A development signing key, made at start-up and gone when the server
/// stops: JWTs as production issues them, with no secret to manage.
fn development_keys() -> Signer {
    let key = generate_key("wxauth-local-dev").and_then(|secret| SigningKey::from_secret(&secret));
    Signer {
        current: Some(or_exit("wxauth-local", key)),
        ..Signer::default()
    }
}

async fn app(config: LocalConfig) -> App {
    let ttl = config.session_ttl_seconds;
    let jwt = JwtSettings {
        issuer: format!("http://127.0.0.1:{}", config.port),
        audience: DEFAULT_AUDIENCE.to_owned(),
    };
    let single_session = config.single_session;
    let (apps, secrets, api_base, simulated, h5) = match config.wechat {
        Some(real) => {
            let apps = real.apps;
            let parsed = or_exit(
                "wxauth-local",
                AppSecrets::parse(&real.appsecret)
                    .map_err(|err| format!("WECHAT_APPSECRET: {err}")),
            );
            eprintln!(
                "wxauth-local: using the real WeChat API at {} for {}",
                real.api_base,
                apps.iter()
                    .map(|app| app.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let secrets = StaticSecrets::from_parsed(apps.default_app().id.clone(), parsed);
            (apps, secrets, real.api_base, false, None)
        }
        None => {
            let apps = config
                .apps
                .unwrap_or_else(|| or_exit("wxauth-local", Apps::parse(SIMULATOR_APPS)));
            let sim_apps: Vec<SimApp> = apps
                .iter()
                .map(|app| match app.kind {
                    AppKind::MiniProgram => SimApp::mini_program(app.id.as_str(), SIMULATOR_SECRET),
                    AppKind::OAuth => SimApp::oauth(app.id.as_str(), SIMULATOR_SECRET),
                })
                .map(SimApp::bound)
                .collect();
            let sim = or_exit(
                "wxauth-local",
                WeChatSim::start_apps(&sim_apps, UnknownCodes::AcceptOnce).await,
            );
            print_simulator_banner(&sim.base, &apps);
            let secrets = StaticSecrets::per_app(
                apps.default_app().id.clone(),
                apps.iter()
                    .map(|app| (app.id.clone(), AppSecret::new(SIMULATOR_SECRET)))
                    .collect(),
            );
            let h5 = apps
                .iter()
                .find(|app| app.kind == AppKind::OAuth)
                .map(|app| examples::H5Example {
                    appid: app.id.as_str().to_owned(),
                    authorize_url: format!("{}/connect/oauth2/authorize", sim.base),
                });
            (apps, secrets, sim.base, true, h5)
        }
    };
    let token_check = || TokenCheck::new(Some(jwt.clone())).with_apps(apps.clone());
    let wechat = or_exit(
        "wxauth-local",
        HttpWeChat::new(&api_base, HttpWeChat::CONNECT_TIMEOUT),
    );
    let store: Store = Arc::new(MemorySessionStore::new());
    // One keeper per route, sharing the tokens as the functions do through the table.
    let token_cache = Arc::new(MemoryTokenCache::new());
    let tokens = || -> Tokens {
        AccessTokens::new(
            Arc::clone(&token_cache),
            wechat.clone(),
            secrets.clone(),
            RetryPolicy::default(),
        )
    };
    let default_app = apps.default_app().id.clone();
    let login = Login::new(
        Arc::clone(&store),
        wechat.clone(),
        secrets.clone(),
        LoginSettings {
            apps: apps.clone(),
            session_ttl_seconds: ttl,
            retry: RetryPolicy::default(),
            log_retention_days: DEFAULT_RETENTION_DAYS,
            risk: RiskPolicy::default(),
        },
    )
    .with_single_session(single_session)
    .with_refresh(RefreshSettings::default())
    .with_jwt(JwtIssuer::new(
        development_keys(),
        jwt.clone(),
        default_app.clone(),
        0,
    ));
    or_exit("wxauth-local", login.load_signing_keys().await);
    App {
        phone: DecryptPhone::new(Arc::clone(&store), apps.clone())
            .with_wechat(tokens())
            .with_token_check(token_check()),
        check: CheckSession::new(Arc::clone(&store))
            .with_wechat(tokens())
            .with_log_settings(LogSettings {
                appid: Some(default_app),
                retention_days: DEFAULT_RETENTION_DAYS,
            })
            .with_token_check(token_check()),
        authorizer: Authorizer::new(Arc::clone(&store))
            .with_token_check(TokenCheck::new(Some(jwt.clone()))),
        tokens: token_check(),
        login,
        store,
        simulated,
        h5,
    }
}

fn print_simulator_banner(base: &str, apps: &Apps) {
    let listed: Vec<String> = apps
        .iter()
        .map(|app| match app.kind {
            AppKind::MiniProgram => format!("{} (mini-program)", app.id),
            AppKind::OAuth => format!("{} (oauth)", app.id),
        })
        .collect();
    eprintln!(
        "\
================================================================================
 wxauth-local: WECHAT SIMULATOR ON (no WECHAT_APPSECRET)
 No request goes to WeChat: the simulator answers at {base}
 apps (the first is the default; POST /login {{\"code\", \"appid\"}} picks one):
   {}
  - any code logs in once; a second use answers 401 invalid_code (40163)
  - one person per code prefix: alice-1 and alice-2 are one user, with an
    openid per app and one unionid across them (one account)
  - reserved codes: errcode-40029, errcode-40163, errcode-40226 (403),
    errcode-45011 (429), errcode--1 (503); html, notjson (502)
  - POST /dev/phone-payload {{\"phoneNumber\": \"13800138000\"}} with the bearer
    token returns encryptedData + iv for POST /phone
  - POST /dev/user-info {{\"nickName\": \"...\"}} with the bearer token returns
    rawData + signature, as wx.getUserInfo would, for POST /session
  - GET /me with the bearer token: who is calling, as the authorizer decides
  - GET /account, DELETE /account: the caller's account (kept in memory)
  - /examples/h5/: an official account's page signing in through WeChat's
    OAuth redirect (the simulator's authorize page agrees at once)
  - tokens are RS256 JWTs signed by a development key made at start-up
    (GET /.well-known/jwks.json); POST /refresh {{\"refreshToken\": \"...\"}}
    renews a session without WeChat
 Sessions, accounts and the login log live in memory and vanish when the
 server stops.
================================================================================",
        listed.join("\n   ")
    );
}

#[tokio::main]
async fn main() {
    init_logging();
    let config = or_exit("wxauth-local", LocalConfig::from_env(&ProcessEnv));
    let port = config.port;
    let app = router(app(config).await);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = or_exit("wxauth-local", tokio::net::TcpListener::bind(addr).await);
    eprintln!("wxauth-local: listening on http://{addr}");
    let stopped = async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("wxauth-local: stopped");
    };
    or_exit(
        "wxauth-local",
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await,
    );
}
