//! The four HTTP-facing functions of one deployment (login, decrypt-phone,
//! check-session, the authorizer) as release binaries under the Lambda
//! Runtime API, configured as the template configures them, with the calls
//! the end-to-end tests make of them.

use serde_json::{Value, json};

use crate::events::{HttpEvent, authorizer_event};
use crate::invoke::login_event;
use crate::runtime::{LambdaFunction, Outcome};
use crate::world::World;

pub struct Stack {
    pub login: LambdaFunction,
    pub phone: LambdaFunction,
    pub check: LambdaFunction,
    pub authorizer: LambdaFunction,
}

impl Stack {
    /// `shared` on top of the world's environment for every function, and
    /// `login_only` for login alone (the signing key).
    pub async fn start(
        world: &World,
        shared: &[(&'static str, String)],
        login_only: &[(&'static str, String)],
    ) -> Self {
        Self::start_with(world.function_env(), shared, login_only).await
    }

    /// As `start`, on top of `env` instead of the world's environment (the
    /// world reached over TLS, say).
    pub async fn start_with(
        mut env: Vec<(&'static str, String)>,
        shared: &[(&'static str, String)],
        login_only: &[(&'static str, String)],
    ) -> Self {
        env.extend(shared.iter().cloned());
        let mut login_env = env.clone();
        login_env.extend(login_only.iter().cloned());
        Self {
            login: LambdaFunction::start("login", &login_env).await,
            phone: LambdaFunction::start("decrypt-phone", &env).await,
            check: LambdaFunction::start("check-session", &env).await,
            authorizer: LambdaFunction::start("authorizer", &env).await,
        }
    }

    /// `POST /login` with `code`.
    pub async fn log_in_with_code(&mut self, code: &str) -> (u16, Value) {
        let (status, _, body) = self.login.call(login_event(code).build()).await;
        (status, body)
    }

    /// A successful login of `openid` with a fresh simulator code.
    pub async fn log_in(&mut self, world: &World, openid: &str) -> (Value, wechat_sim::Issued) {
        let (code, issued) = world.wechat.issue_code_for(openid, None);
        let (status, body) = self.log_in_with_code(&code).await;
        assert_eq!(status, 200, "{body}");
        (body, issued)
    }

    /// `method path` with the bearer token, to the function that serves it.
    pub async fn with_token(&mut self, method: &str, path: &str, token: &str) -> (u16, Value) {
        self.serve(path, HttpEvent::new(method, path).bearer(token))
            .await
    }

    /// `method path` with the bearer token and a JSON body.
    pub async fn with_json(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> (u16, Value) {
        self.serve(path, HttpEvent::new(method, path).bearer(token).json(body))
            .await
    }

    /// The event, to the function that serves `path` (login's routes aside).
    async fn serve(&mut self, path: &str, event: HttpEvent) -> (u16, Value) {
        let function = match path {
            "/phone" | "/open-data" => &mut self.phone,
            _ => &mut self.check,
        };
        let (status, _, body) = function.call(event.build()).await;
        (status, body)
    }

    pub async fn session(&mut self, token: &str) -> (u16, Value) {
        self.with_token("GET", "/session", token).await
    }

    /// `POST /refresh`.
    pub async fn refresh(&mut self, refresh_token: &str) -> (u16, Value) {
        let event = HttpEvent::new("POST", "/refresh")
            .json(&json!({"refreshToken": refresh_token}))
            .build();
        let (status, _, body) = self.login.call(event).await;
        (status, body)
    }

    /// The authorizer's answer for `Bearer <token>`.
    pub async fn authorized(&mut self, token: &str) -> Value {
        match self
            .authorizer
            .invoke(authorizer_event(Some(&format!("Bearer {token}"))))
            .await
        {
            Outcome::Response(answer) => answer,
            Outcome::Error(error) => panic!("authorizer failed: {error}"),
        }
    }

    pub async fn allowed(&mut self, token: &str) -> bool {
        self.authorized(token).await["isAuthorized"] == true
    }

    /// Stops every function; their logs, concatenated.
    pub async fn stop(&mut self) -> String {
        let mut logs = String::new();
        for function in [
            &mut self.login,
            &mut self.phone,
            &mut self.check,
            &mut self.authorizer,
        ] {
            function.stop().await;
            logs.push_str(&function.logs.text());
        }
        logs
    }
}
