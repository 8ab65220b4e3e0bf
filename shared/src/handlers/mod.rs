//! One handler per function. Each runs the contract's checks in order and maps
//! every failure through `ApiError`.

mod account;
pub mod authorizer;
mod check_session;
mod checks;
mod login;
mod me;
mod phone;
mod refresh;
#[cfg(feature = "aws")]
pub mod rotation;
mod well_known;

pub use authorizer::Authorizer;
pub use check_session::{CheckSession, CheckSessionStore, LogSettings};
pub use login::{Login, LoginFunctionStore, LoginSettings};
pub use phone::DecryptPhone;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties;
