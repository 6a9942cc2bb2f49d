//! The ports of console users and their sessions (`kith_core::console` holds the rules).
//! Only hashes are stored: a password's argon2id PHC string, SHA-256 of a session's and
//! of an invitation's token.
//!
//! A login is unique across the kernel and a session or an invitation is found by its
//! token's hash alone (a sign-in does not know its shop yet): those three lookups take no
//! shop. Every other method takes the shop and answers only within it.

use chrono::{DateTime, Utc};
use kith_domain::auth::Role;

use crate::Result;

/// A console user as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleUserRow {
    pub id: i64,
    pub shop_id: i64,
    /// Lower-cased and trimmed.
    pub login: String,
    pub name: Option<String>,
    /// The role's name (`owner`, `operator`, `analyst`).
    pub role: String,
    /// The argon2id PHC string; `None` until an invitation is accepted.
    pub password_hash: Option<String>,
    /// Failed sign-ins since the last success or lock.
    pub failed_sign_ins: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub invite_hash: Option<Vec<u8>>,
    pub invite_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

// Hashes and CSRF tokens are never in a `Debug` output, which logs may carry.
impl std::fmt::Debug for ConsoleUserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleUserRow")
            .field("id", &self.id)
            .field("shop_id", &self.shop_id)
            .field("login", &self.login)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "<redacted>"))
            .field("failed_sign_ins", &self.failed_sign_ins)
            .field("locked_until", &self.locked_until)
            .field("invite_hash", &self.invite_hash.as_ref().map(|_| "<redacted>"))
            .field("invite_expires_at", &self.invite_expires_at)
            .field("created_at", &self.created_at)
            .field("last_sign_in_at", &self.last_sign_in_at)
            .finish()
    }
}

/// A console user to store.
#[derive(Clone)]
pub struct NewConsoleUserRow<'a> {
    pub shop_id: i64,
    pub login: &'a str,
    pub name: Option<&'a str>,
    pub role: Role,
    pub password_hash: Option<&'a str>,
    pub invite_hash: Option<&'a [u8]>,
    pub invite_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewConsoleUserRow<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewConsoleUserRow")
            .field("shop_id", &self.shop_id)
            .field("login", &self.login)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &self.password_hash.map(|_| "<redacted>"))
            .field("invite_hash", &self.invite_hash.map(|_| "<redacted>"))
            .field("invite_expires_at", &self.invite_expires_at)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A session as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSessionRow {
    /// SHA-256 of the session's token.
    pub token_hash: Vec<u8>,
    pub shop_id: i64,
    pub user_id: i64,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for ConsoleSessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSessionRow")
            .field("token_hash", &"<redacted>")
            .field("shop_id", &self.shop_id)
            .field("user_id", &self.user_id)
            .field("csrf_token", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a sign-in changes of a user: the failures counted, the lock, the last success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInState {
    pub failed_sign_ins: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

pub trait ConsoleRead {
    /// The user whose login is `login` (lower-cased), in any shop.
    fn user_by_login(&self, login: &str) -> Result<Option<ConsoleUserRow>>;
    /// The user whose pending invitation's token hashes to `invite_hash`, in any shop.
    fn user_by_invite(&self, invite_hash: &[u8]) -> Result<Option<ConsoleUserRow>>;
    /// The shop's user `user_id`.
    fn user(&self, shop_id: i64, user_id: i64) -> Result<Option<ConsoleUserRow>>;
    /// The shop's users, by creation time then id.
    fn users(&self, shop_id: i64) -> Result<Vec<ConsoleUserRow>>;
    /// The session whose token hashes to `token_hash`, expired or not, in any shop.
    fn session(&self, token_hash: &[u8]) -> Result<Option<ConsoleSessionRow>>;
}

pub trait ConsoleWrite {
    /// Store a new user; its id.
    fn insert_user(&self, user: &NewConsoleUserRow<'_>) -> Result<i64>;
    /// Set the shop's user's password hash and drop its invitation.
    fn set_password(&self, shop_id: i64, user_id: i64, password_hash: &str) -> Result<()>;
    /// Write what a sign-in changed of the shop's user.
    fn set_sign_in_state(&self, shop_id: i64, user_id: i64, state: &SignInState) -> Result<()>;
    /// Delete the shop's user (its sessions are deleted first by the caller).
    fn delete_user(&self, shop_id: i64, user_id: i64) -> Result<()>;
    /// Store a new session.
    fn insert_session(&self, session: &ConsoleSessionRow) -> Result<()>;
    /// Delete the shop's session whose token hashes to `token_hash`, if it exists.
    fn delete_session(&self, shop_id: i64, token_hash: &[u8]) -> Result<()>;
    /// Delete every session of the shop's user but the one whose token hashes to `keep`.
    fn delete_sessions(&self, shop_id: i64, user_id: i64, keep: Option<&[u8]>) -> Result<()>;
    /// Delete the shop's user's sessions that expired at or before `now`.
    fn delete_expired_sessions(&self, shop_id: i64, user_id: i64, now: DateTime<Utc>) -> Result<()>;
}
