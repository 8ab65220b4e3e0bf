//! One handler per function. Each runs the contract's checks in order and maps
//! every failure through `ApiError`.

mod check_session;
mod login;
mod phone;
mod refresh;
mod well_known;

pub use check_session::{CheckSession, CheckSessionStore, LogSettings};
pub use login::{Login, LoginSettings, READ_BACK_BUDGET, SESSION_WRITE_BUDGET, TokenSource};
pub use phone::DecryptPhone;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties;
