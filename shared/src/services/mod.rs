//! The use cases, over the ports: a session as a route decides on it, a
//! bearer token (opaque or JWT) to its session, login's signing keys and the
//! checkers' copy of the published set, the signing key's rotation steps,
//! the login and refresh writes with their read-back, the operator's
//! commands. No HTTP: the edge and the handlers call these.

pub mod access;
pub mod admin;
pub mod issuer;
pub mod login;
pub mod published_keys;
pub mod refresh;
pub mod risk;
pub mod rotation;
pub mod sessions;
pub mod sign_in;
