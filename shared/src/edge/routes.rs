//! The route table, and what one function's part of the API is.

use std::future::Future;

use crate::edge::error::ApiError;
use crate::edge::request::{ApiRequest, ApiResponse};

/// The route table: every path the API serves and the methods it serves there.
/// The edge (`crate::edge`) routes by it for Lambda and the local server alike;
/// `template.yaml` and `docs/openapi.yaml` list the same routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Login,
    Phone,
    OpenData,
    Session,
    /// The caller's account: read it or delete it.
    Account,
    /// The sample route behind the authorizer: who is calling.
    Me,
    /// A new session from a refresh token, without WeChat.
    Refresh,
    Jwks,
    OpenIdConfiguration,
}

impl Route {
    pub const ALL: [Route; 9] = [
        Route::Login,
        Route::Phone,
        Route::OpenData,
        Route::Session,
        Route::Account,
        Route::Me,
        Route::Refresh,
        Route::Jwks,
        Route::OpenIdConfiguration,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Self::Login => "/login",
            Self::Phone => "/phone",
            Self::OpenData => "/open-data",
            Self::Session => "/session",
            Self::Account => "/account",
            Self::Me => "/me",
            Self::Refresh => "/refresh",
            Self::Jwks => "/.well-known/jwks.json",
            Self::OpenIdConfiguration => "/.well-known/openid-configuration",
        }
    }

    /// The methods served, as the `Allow` header lists them.
    pub fn methods(self) -> &'static str {
        match self {
            Self::Login | Self::Phone | Self::OpenData | Self::Refresh => "POST",
            Self::Session => "GET, POST, DELETE",
            Self::Account => "GET, DELETE",
            Self::Me | Self::Jwks | Self::OpenIdConfiguration => "GET",
        }
    }

    /// The route at `path` (no stage prefix, no trailing slash).
    pub fn at(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|route| route.path() == path)
    }
}

/// One function's part of the API. The edge has already checked the body size
/// and the method against the route table when `handle` runs.
pub trait Handler: Send + Sync + 'static {
    /// Whether this function serves `route`; the others answer 404 here.
    fn serves(&self, route: Route) -> bool;

    fn handle(&self, route: Route, request: ApiRequest)
    -> impl Future<Output = ApiResponse> + Send;
}

/// `allowed` is the contract's list, e.g. `"GET, POST"`.
pub fn check_method(method: &str, allowed: &'static str) -> Result<(), ApiError> {
    if allowed.split(", ").any(|m| m == method) {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed { allowed })
    }
}
