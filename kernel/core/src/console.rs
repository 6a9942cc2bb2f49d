//! Console users and their sessions: people who sign in to the merchant console, each in
//! one shop with a role (`owner`, `operator`, `analyst`) and that role's default scopes.
//!
//! - A password is 10-256 characters, stored as an argon2id PHC string (m = 19 MiB,
//!   t = 2, p = 1, OWASP's first choice). Hashing is CPU work of tens of milliseconds: the
//!   API calls these methods on its blocking pool.
//! - A session is a random 32-byte token (base64url) of which only SHA-256 is stored, with
//!   a random CSRF token the console sends back on writes. It ends [`SESSION_TTL`] after
//!   sign-in however active it is (absolute expiry), at sign-out, when its user changes
//!   their password elsewhere, or when the user is removed.
//! - [`LOCK_AFTER`] failed sign-ins in a row (a wrong current password in a password change
//!   counts too) lock the user for [`LOCK_FOR`] by the kernel's clock; a success resets the
//!   count. The lock is audited (`console.user.locked`); attempts refused while it lasts write
//!   nothing (a warning is logged), so a locked account costs an attacker's attempts no write.
//!   An owner ([`ConsoleService::unlock_console_user`]) or the command line ends a lock. An
//!   unknown login is verified against a dummy hash ([`prepare`] makes it ahead of the first
//!   sign-in), so answering it takes as long as a wrong password; the API counts the failures
//!   of unknown logins in memory so that they lock as a known login does.
//! - An owner invites a user: an invitation token, valid [`INVITE_TTL`] and stored hashed,
//!   which sets the password once.
//! - Every sign-in (success, failure, lock), sign-out, invitation, acceptance, removal,
//!   unlock and password change or reset is in the shop's audit log, by `user:<id>` where a
//!   user acted. Removing a user revokes the API keys they created (and the keys made with
//!   those) in the same transaction.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use kith_domain::FieldError;
use kith_domain::auth::Role;
use kith_domain::model::{ConsoleSession, ConsoleUser, ConsoleUserStatus, NewConsoleUser, Principal};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::ports::{ConsoleSessionRow, ConsoleUserRow, NewConsoleUserRow, SignInState, Storage, StorageExt, WriteTx};
use crate::{Actor, Error, Result, shops};

/// A session ends this long after sign-in, however active.
pub const SESSION_TTL: Duration = Duration::hours(12);
/// Failed sign-ins in a row that lock a user.
pub const LOCK_AFTER: i64 = 5;
/// How long a lock lasts.
pub const LOCK_FOR: Duration = Duration::minutes(15);
/// How long an invitation can be accepted.
pub const INVITE_TTL: Duration = Duration::hours(72);
/// Bounds of a password, in characters.
pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 256;
/// Longest login, in characters.
pub const LOGIN_MAX: usize = 64;

fn argon() -> Argon2<'static> {
    // 19 MiB, 2 passes, 1 lane: constant, valid parameters.
    let params = Params::new(19_456, 2, 1, None).expect("the argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The argon2id PHC string of `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    let salt: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon().hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` is the one `phc` was made from (parameters read from the string).
fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| argon().verify_password(password.as_bytes(), &hash).is_ok())
}

/// The hash unknown logins are verified against.
static DUMMY: LazyLock<String> = LazyLock::new(|| hash_password("kith dummy password, never a user's").unwrap_or_default());

/// Make the dummy hash now (tens of milliseconds), so that the first sign-in of an unknown
/// login does not take longer than that of a known one. A server calls it as it starts.
pub fn prepare() {
    LazyLock::force(&DUMMY);
}

/// Spend what a real verification costs, for a login that has no password to check.
fn verify_dummy(password: &str) {
    verify_password(&DUMMY, password);
}

/// 32 random bytes, base64url without padding.
fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// SHA-256 of a token, as stored: the tokens are 256 random bits, so a fast hash suffices.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A login as stored and compared: trimmed, lower-cased, 1-64 characters, no invisible character.
pub fn normalise_login(login: &str) -> Result<String, FieldError> {
    let login = login.trim().to_lowercase();
    if login.is_empty() || login.chars().count() > LOGIN_MAX {
        return Err(FieldError::new("login", format!("must be 1-{LOGIN_MAX} characters")));
    }
    kith_domain::text::check("login", &login)?;
    if login.chars().any(char::is_whitespace) {
        return Err(FieldError::new("login", "must not contain spaces"));
    }
    Ok(login)
}

/// The password policy: 10-256 characters.
pub fn check_password(field: &str, password: &str) -> Result<(), FieldError> {
    let n = password.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        return Err(FieldError::new(field, format!("must be {PASSWORD_MIN}-{PASSWORD_MAX} characters")));
    }
    Ok(())
}

/// The actor of what a console user does, in audit entries and merge records: `user:<id>`.
pub fn user_actor(user_id: i64) -> Actor {
    Actor::key(&format!("user:{user_id}"))
}

fn role_of(row: &ConsoleUserRow) -> Result<Role> {
    row.role.parse().map_err(|e: String| Error::Internal(anyhow::anyhow!(e)))
}

fn status(row: &ConsoleUserRow, now: DateTime<Utc>) -> ConsoleUserStatus {
    if row.password_hash.is_none() {
        ConsoleUserStatus::Invited
    } else if row.locked_until.is_some_and(|until| until > now) {
        ConsoleUserStatus::Locked
    } else {
        ConsoleUserStatus::Active
    }
}

fn view(row: &ConsoleUserRow, now: DateTime<Utc>) -> Result<ConsoleUser> {
    Ok(ConsoleUser {
        id: row.id,
        login: row.login.clone(),
        name: row.name.clone(),
        role: role_of(row)?,
        status: status(row, now),
        created_at: row.created_at,
        last_sign_in_at: row.last_sign_in_at,
    })
}

/// A user created: with an invitation's token when no password was given.
#[derive(Debug, Clone)]
pub struct CreatedConsoleUser {
    pub user: ConsoleUser,
    pub invite: Option<Invite>,
}

/// An invitation's token, shown once; only its hash is stored.
#[derive(Clone)]
pub struct Invite {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

// Secrets (tokens, hashes, CSRF tokens) are never in a `Debug` output, which logs may carry.
impl std::fmt::Debug for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invite").field("token", &"<redacted>").field("expires_at", &self.expires_at).finish()
    }
}

/// A session begun: its token (the cookie's value, shown once) and what the console shows.
#[derive(Clone)]
pub struct SignedIn {
    pub token: String,
    pub session: ConsoleSession,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn").field("token", &"<redacted>").field("session", &self.session).finish()
    }
}

/// What a sign-in came to.
#[derive(Debug, Clone)]
pub enum SignIn {
    SignedIn(Box<SignedIn>),
    /// Unknown login, wrong password, or a user not yet active: one answer for all.
    Refused,
    /// No user has this login: answered as [`SignIn::Refused`], and counted by the caller
    /// (the API keeps the failures of unknown logins in memory, to lock them alike).
    UnknownLogin,
    /// Too many failures in a row: refused until then, whatever the password.
    Locked {
        until: DateTime<Utc>,
    },
}

/// What a password change came to.
#[derive(Debug, Clone)]
pub enum PasswordChange {
    /// Changed: the user's sessions ended, and this new one replaces the caller's.
    Changed(Box<SignedIn>),
    /// The current password is wrong (a failure counted toward the lock).
    Wrong,
    /// Too many failures in a row: refused until then.
    Locked { until: DateTime<Utc> },
}

/// A request authenticated by its session cookie.
#[derive(Clone)]
pub struct SessionCaller {
    /// `key_id` is `user:<id>`; the role's default scopes.
    pub principal: Principal,
    pub shop_id: i64,
    pub user: ConsoleUser,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    pub token_hash: Vec<u8>,
}

impl std::fmt::Debug for SessionCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCaller")
            .field("principal", &self.principal)
            .field("shop_id", &self.shop_id)
            .field("user", &self.user)
            .field("csrf_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("token_hash", &"<redacted>")
            .finish()
    }
}

impl SessionCaller {
    pub fn actor(&self) -> Actor {
        user_actor(self.user.id)
    }
}

/// Begin a session of `user` at `now` in this transaction: the session, the reset count,
/// the audit entry.
fn begin_session(tx: &dyn WriteTx, user: &ConsoleUserRow, now: DateTime<Utc>, via: &str) -> Result<SignedIn> {
    tx.console_writer().set_sign_in_state(
        user.shop_id,
        user.id,
        &SignInState { failed_sign_ins: 0, locked_until: None, last_sign_in_at: Some(now) },
    )?;
    let actor = user_actor(user.id);
    tx.audit().record(
        Some(user.shop_id),
        &actor,
        "console.sign_in",
        Some(&format!("user:{}", user.id)),
        json!({"login": user.login, "via": via}),
        now,
    )?;
    new_session(tx, user, now)
}

/// A new session of `user` at `now` in this transaction (its expired ones dropped).
fn new_session(tx: &dyn WriteTx, user: &ConsoleUserRow, now: DateTime<Utc>) -> Result<SignedIn> {
    let token = random_token();
    let session = ConsoleSessionRow {
        token_hash: token_hash(&token),
        shop_id: user.shop_id,
        user_id: user.id,
        csrf_token: random_token(),
        created_at: now,
        expires_at: now + SESSION_TTL,
    };
    let w = tx.console_writer();
    w.delete_expired_sessions(user.shop_id, user.id, now)?;
    w.insert_session(&session)?;
    let row = tx.console().user(user.shop_id, user.id)?.ok_or_else(|| Error::NotFound(format!("console user {}", user.id)))?;
    let role = role_of(&row)?;
    Ok(SignedIn {
        token,
        session: ConsoleSession {
            user: Some(view(&row, now)?),
            role,
            scopes: role.default_scopes(),
            shop: shops::load(tx, user.shop_id)?,
            csrf_token: Some(session.csrf_token),
            expires_at: Some(session.expires_at),
        },
    })
}

/// Count a failure of `current` at `now` in this transaction (audited as `action` with
/// `detail`, plus the failures so far); when it is the [`LOCK_AFTER`]th, lock the user and
/// audit the lock. The end of the lock, if this failure locked the user.
fn count_failure(
    tx: &dyn WriteTx,
    current: &ConsoleUserRow,
    now: DateTime<Utc>,
    action: &str,
    mut detail: serde_json::Value,
) -> Result<Option<DateTime<Utc>>> {
    let (actor, target) = (user_actor(current.id), format!("user:{}", current.id));
    let failed = current.failed_sign_ins + 1;
    detail["failures"] = json!(failed);
    tx.audit().record(Some(current.shop_id), &actor, action, Some(&target), detail, now)?;
    if failed >= LOCK_AFTER {
        let until = now + LOCK_FOR;
        let state = SignInState { failed_sign_ins: 0, locked_until: Some(until), last_sign_in_at: current.last_sign_in_at };
        tx.console_writer().set_sign_in_state(current.shop_id, current.id, &state)?;
        let detail = json!({"login": current.login, "failures": failed, "locked_until": until});
        tx.audit().record(Some(current.shop_id), &actor, "console.user.locked", Some(&target), detail, now)?;
        return Ok(Some(until));
    }
    let state = SignInState { failed_sign_ins: failed, locked_until: None, last_sign_in_at: current.last_sign_in_at };
    tx.console_writer().set_sign_in_state(current.shop_id, current.id, &state)?;
    Ok(None)
}

/// The lock of `row` at `now`, if it is locked.
fn locked(row: &ConsoleUserRow, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    row.locked_until.filter(|until| *until > now)
}

/// An attempt refused because the user is locked: logged, not written.
fn warn_locked(row: &ConsoleUserRow, what: &str, until: DateTime<Utc>) {
    tracing::warn!(user = row.id, shop = row.shop_id, %until, "console {what} refused: the user is locked");
}

/// The invitation error: one answer for a token unknown, used or expired.
fn bad_invite() -> Error {
    FieldError::new("token", "the invitation is unknown, already accepted or expired").into()
}

/// Console users, invitations, sign-in and sessions.
pub trait ConsoleService: Storage {
    /// Create a console user of the shop: invited (an invitation's token, valid
    /// [`INVITE_TTL`]) when `password` is `None`, active with that password otherwise.
    fn create_console_user(
        &self,
        shop_id: i64,
        new: &NewConsoleUser,
        password: Option<&str>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<CreatedConsoleUser> {
        let login = normalise_login(&new.login)?;
        let name = new.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
        if let Some(name) = name {
            kith_domain::text::check_required("name", name, 100)?;
            kith_domain::text::check("name", name)?;
        }
        if !matches!(new.role, Role::Owner | Role::Operator | Role::Analyst) {
            return Err(FieldError::new("role", "must be owner, operator or analyst").into());
        }
        let password_hash = match password {
            Some(password) => {
                check_password("password", password)?;
                Some(hash_password(password)?)
            }
            None => None,
        };
        let invite = password.is_none().then(|| Invite { token: random_token(), expires_at: now + INVITE_TTL });
        let invite_hash = invite.as_ref().map(|i| token_hash(&i.token));
        self.write(|tx| {
            shops::load(tx, shop_id)?;
            if tx.console().user_by_login(&login)?.is_some() {
                return Err(Error::Conflict(format!("the login `{login}` is taken")));
            }
            let row = NewConsoleUserRow {
                shop_id,
                login: &login,
                name,
                role: new.role,
                password_hash: password_hash.as_deref(),
                invite_hash: invite_hash.as_deref(),
                invite_expires_at: invite.as_ref().map(|i| i.expires_at),
                created_at: now,
            };
            let id = tx.console_writer().insert_user(&row)?;
            let action = if invite.is_some() { "console.user.invite" } else { "console.user.create" };
            tx.audit().record(Some(shop_id), actor, action, Some(&format!("user:{id}")), json!({"login": login, "role": new.role}), now)?;
            let row = tx
                .console()
                .user(shop_id, id)?
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("console user {id} not found after its insert")))?;
            Ok(CreatedConsoleUser { user: view(&row, now)?, invite: invite.clone() })
        })
    }

    /// The shop's console users, by creation.
    fn console_users(&self, shop_id: i64, now: DateTime<Utc>) -> Result<Vec<ConsoleUser>> {
        self.read(|tx| tx.console().users(shop_id)?.iter().map(|row| view(row, now)).collect())
    }

    /// Remove the shop's user `user_id` and end their sessions. `acting_user` (a user removing
    /// another) may not remove themselves, and no one removes the shop's last active owner.
    /// The API keys the user created (`created_by` `user:<id>`), and the keys created with
    /// those, are revoked in the same transaction; the audit entry lists them.
    fn remove_console_user(&self, shop_id: i64, user_id: i64, acting_user: Option<i64>, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let user = tx.console().user(shop_id, user_id)?.ok_or_else(|| Error::NotFound(format!("console user {user_id}")))?;
            if acting_user == Some(user_id) {
                return Err(Error::Conflict("a console user cannot remove themselves".into()));
            }
            let active_owner = |row: &ConsoleUserRow| row.role == Role::Owner.as_str() && row.password_hash.is_some();
            if active_owner(&user) && !tx.console().users(shop_id)?.iter().any(|row| row.id != user_id && active_owner(row)) {
                return Err(Error::Conflict("the shop's last active owner cannot be removed".into()));
            }
            tx.console_writer().delete_sessions(shop_id, user_id, None)?;
            tx.console_writer().delete_user(shop_id, user_id)?;
            let revoked = crate::keys::revoke_created_by(tx, shop_id, &format!("user:{user_id}"), now)?;
            tx.audit().record(
                Some(shop_id),
                actor,
                "console.user.remove",
                Some(&format!("user:{user_id}")),
                json!({"login": user.login, "revoked_keys": revoked}),
                now,
            )?;
            Ok(revoked)
        })
        .map(|revoked| {
            if let Some(memory) = self.key_memory() {
                for key_id in &revoked {
                    memory.forget(key_id);
                }
            }
        })
    }

    /// The user whose login is `login` (compared normalised), in any shop: its shop and view.
    fn console_user_by_login(&self, login: &str, now: DateTime<Utc>) -> Result<Option<(i64, ConsoleUser)>> {
        let login = normalise_login(login)?;
        self.read(|tx| tx.console().user_by_login(&login)?.map(|row| Ok((row.shop_id, view(&row, now)?))).transpose())
    }

    /// End the lock of the shop's user `user_id` and clear their count of failures (audited
    /// as `console.user.unlock`).
    fn unlock_console_user(&self, shop_id: i64, user_id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<ConsoleUser> {
        self.write(|tx| {
            let user = tx.console().user(shop_id, user_id)?.ok_or_else(|| Error::NotFound(format!("console user {user_id}")))?;
            let state = SignInState { failed_sign_ins: 0, locked_until: None, last_sign_in_at: user.last_sign_in_at };
            tx.console_writer().set_sign_in_state(shop_id, user_id, &state)?;
            let detail = json!({"login": user.login, "was_locked_until": locked(&user, now), "failures": user.failed_sign_ins});
            tx.audit().record(Some(shop_id), actor, "console.user.unlock", Some(&format!("user:{user_id}")), detail, now)?;
            let row = tx.console().user(shop_id, user_id)?.ok_or_else(|| Error::NotFound(format!("console user {user_id}")))?;
            view(&row, now)
        })
    }

    /// Set a new password for the shop's user `user_id` (the command line's way back in): it
    /// activates an invited user, ends the lock and every session of the user (audited as
    /// `console.password.reset`).
    fn reset_console_password(&self, shop_id: i64, user_id: i64, password: &str, actor: &Actor, now: DateTime<Utc>) -> Result<ConsoleUser> {
        check_password("password", password)?;
        let password_hash = hash_password(password)?;
        self.write(|tx| {
            let user = tx.console().user(shop_id, user_id)?.ok_or_else(|| Error::NotFound(format!("console user {user_id}")))?;
            let w = tx.console_writer();
            w.set_password(shop_id, user_id, &password_hash)?;
            w.set_sign_in_state(
                shop_id,
                user_id,
                &SignInState { failed_sign_ins: 0, locked_until: None, last_sign_in_at: user.last_sign_in_at },
            )?;
            w.delete_sessions(shop_id, user_id, None)?;
            let detail = json!({"login": user.login});
            tx.audit().record(Some(shop_id), actor, "console.password.reset", Some(&format!("user:{user_id}")), detail, now)?;
            let row = tx.console().user(shop_id, user_id)?.ok_or_else(|| Error::NotFound(format!("console user {user_id}")))?;
            view(&row, now)
        })
    }

    /// Sign in with a login and a password at `now` (the kernel's clock).
    fn console_sign_in(&self, login: &str, password: &str, now: DateTime<Utc>) -> Result<SignIn> {
        let login = normalise_login(login)?;
        if password.is_empty() {
            return Err(FieldError::new("password", "must not be empty").into());
        }
        if password.chars().count() > PASSWORD_MAX {
            return Err(FieldError::new("password", format!("must be at most {PASSWORD_MAX} characters")).into());
        }
        let Some(user) = self.read(|tx| tx.console().user_by_login(&login))? else {
            verify_dummy(password);
            return Ok(SignIn::UnknownLogin);
        };
        if let Some(until) = locked(&user, now) {
            warn_locked(&user, "sign-in", until);
            return Ok(SignIn::Locked { until });
        }
        // The hash is checked outside the transaction: the writer is not held for it.
        let matches = match &user.password_hash {
            Some(phc) => verify_password(phc, password),
            None => {
                verify_dummy(password);
                false
            }
        };
        self.write(|tx| {
            // Read again: another sign-in may have counted a failure or locked the user meanwhile.
            let Some(current) = tx.console().user(user.shop_id, user.id)? else { return Ok(SignIn::Refused) };
            if let Some(until) = locked(&current, now) {
                warn_locked(&current, "sign-in", until);
                return Ok(SignIn::Locked { until });
            }
            if matches && current.password_hash == user.password_hash {
                return Ok(SignIn::SignedIn(Box::new(begin_session(tx, &current, now, "password")?)));
            }
            let reason = if current.password_hash.is_none() { "not active" } else { "wrong password" };
            let detail = json!({"login": login, "reason": reason});
            Ok(match count_failure(tx, &current, now, "console.sign_in.failed", detail)? {
                Some(until) => SignIn::Locked { until },
                None => SignIn::Refused,
            })
        })
    }

    /// Accept an invitation: set the password, which activates the user, and sign in.
    fn accept_console_invite(&self, token: &str, password: &str, now: DateTime<Utc>) -> Result<SignedIn> {
        if token.is_empty() || token.len() > 200 {
            return Err(bad_invite());
        }
        check_password("password", password)?;
        let hash = token_hash(token);
        let valid = |row: &ConsoleUserRow| row.invite_expires_at.is_some_and(|at| at > now) && row.password_hash.is_none();
        // Looked at first so that a made-up token costs no hashing.
        if !self.read(|tx| tx.console().user_by_invite(&hash))?.is_some_and(|row| valid(&row)) {
            return Err(bad_invite());
        }
        let password_hash = hash_password(password)?;
        self.write(|tx| {
            let user = tx.console().user_by_invite(&hash)?.filter(valid).ok_or_else(bad_invite)?;
            tx.console_writer().set_password(user.shop_id, user.id, &password_hash)?;
            let detail = json!({"login": user.login});
            tx.audit().record(
                Some(user.shop_id),
                &user_actor(user.id),
                "console.invite.accept",
                Some(&format!("user:{}", user.id)),
                detail,
                now,
            )?;
            begin_session(tx, &user, now, "invite")
        })
    }

    /// The session of the cookie `token` at `now`: `None` when unknown, ended or expired.
    fn console_session(&self, token: &str, now: DateTime<Utc>) -> Result<Option<SessionCaller>> {
        let hash = token_hash(token);
        self.read(|tx| {
            let Some(session) = tx.console().session(&hash)?.filter(|s| s.expires_at > now) else { return Ok(None) };
            let Some(row) = tx.console().user(session.shop_id, session.user_id)? else { return Ok(None) };
            let role = role_of(&row)?;
            Ok(Some(SessionCaller {
                principal: Principal {
                    key_id: format!("user:{}", row.id),
                    shop_id: Some(row.shop_id),
                    role,
                    scopes: role.default_scopes(),
                },
                shop_id: row.shop_id,
                user: view(&row, now)?,
                csrf_token: session.csrf_token,
                expires_at: session.expires_at,
                token_hash: hash.clone(),
            }))
        })
    }

    /// End the session of the cookie `token`.
    fn console_sign_out(&self, caller: &SessionCaller, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            tx.console_writer().delete_session(caller.shop_id, &caller.token_hash)?;
            let detail = json!({"login": caller.user.login});
            tx.audit().record(
                Some(caller.shop_id),
                &caller.actor(),
                "console.sign_out",
                Some(&format!("user:{}", caller.user.id)),
                detail,
                now,
            )
        })
    }

    /// Change the signed-in user's password. A wrong current password counts toward the
    /// lock as a failed sign-in does (audited as `console.password.change_failed`); a locked
    /// user is refused without a check. Once changed, every session of the user ends and a
    /// new one replaces the caller's (a new token and CSRF token).
    fn change_console_password(&self, caller: &SessionCaller, current: &str, new: &str, now: DateTime<Utc>) -> Result<PasswordChange> {
        check_password("new_password", new)?;
        let (shop_id, user_id) = (caller.shop_id, caller.user.id);
        let row = self.read(|tx| tx.console().user(shop_id, user_id))?.ok_or_else(|| Error::NotFound(format!("console user {user_id}")))?;
        if let Some(until) = locked(&row, now) {
            warn_locked(&row, "password change", until);
            return Ok(PasswordChange::Locked { until });
        }
        let matches =
            current.chars().count() <= PASSWORD_MAX && row.password_hash.as_deref().is_some_and(|phc| verify_password(phc, current));
        let password_hash = if matches { Some(hash_password(new)?) } else { None };
        self.write(|tx| {
            let current_row = tx.console().user(shop_id, user_id)?.ok_or_else(|| Error::NotFound(format!("console user {user_id}")))?;
            if let Some(until) = locked(&current_row, now) {
                warn_locked(&current_row, "password change", until);
                return Ok(PasswordChange::Locked { until });
            }
            let Some(password_hash) = password_hash.as_deref().filter(|_| current_row.password_hash == row.password_hash) else {
                let detail = json!({"login": current_row.login, "reason": "wrong current password"});
                return Ok(match count_failure(tx, &current_row, now, "console.password.change_failed", detail)? {
                    Some(until) => PasswordChange::Locked { until },
                    None => PasswordChange::Wrong,
                });
            };
            let w = tx.console_writer();
            w.set_password(shop_id, user_id, password_hash)?;
            let state = SignInState { failed_sign_ins: 0, locked_until: None, last_sign_in_at: current_row.last_sign_in_at };
            w.set_sign_in_state(shop_id, user_id, &state)?;
            w.delete_sessions(shop_id, user_id, None)?;
            let detail = json!({"login": current_row.login});
            tx.audit().record(Some(shop_id), &caller.actor(), "console.password.change", Some(&format!("user:{user_id}")), detail, now)?;
            Ok(PasswordChange::Changed(Box::new(new_session(tx, &current_row, now)?)))
        })
    }
}

impl<S: Storage + ?Sized> ConsoleService for S {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse battery!"));
        assert!(!verify_password("not a phc string", "correct horse battery"));
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        use kith_domain::model::{Principal, Shop};

        prepare();
        let at = Utc::now();
        let row = ConsoleUserRow {
            id: 1,
            shop_id: 2,
            login: "ming".into(),
            name: None,
            role: "owner".into(),
            password_hash: Some("$argon2id$SECRET-HASH".into()),
            failed_sign_ins: 0,
            locked_until: None,
            invite_hash: Some(b"SECRET-INVITE".to_vec()),
            invite_expires_at: None,
            created_at: at,
            last_sign_in_at: None,
        };
        let new = NewConsoleUserRow {
            shop_id: 2,
            login: "ming",
            name: None,
            role: Role::Owner,
            password_hash: Some("$argon2id$SECRET-HASH"),
            invite_hash: Some(b"SECRET-INVITE"),
            invite_expires_at: None,
            created_at: at,
        };
        let session_row = ConsoleSessionRow {
            token_hash: b"SECRET-TOKEN-HASH".to_vec(),
            shop_id: 2,
            user_id: 1,
            csrf_token: "SECRET-CSRF".into(),
            created_at: at,
            expires_at: at,
        };
        let shop = Shop { id: 2, name: "Tea".into(), time_zone: "UTC".into(), currency: "CNY".into(), region: "CN".into(), created_at: at };
        let user = view(&row, at).unwrap();
        let session = ConsoleSession {
            user: Some(user.clone()),
            role: Role::Owner,
            scopes: vec![],
            shop,
            csrf_token: Some("SECRET-CSRF".into()),
            expires_at: None,
        };
        let signed = SignedIn { token: "SECRET-TOKEN".into(), session };
        let invite = Invite { token: "SECRET-INVITE".into(), expires_at: at };
        let caller = SessionCaller {
            principal: Principal { key_id: "user:1".into(), shop_id: Some(2), role: Role::Owner, scopes: vec![] },
            shop_id: 2,
            user,
            csrf_token: "SECRET-CSRF".into(),
            expires_at: at,
            token_hash: b"SECRET-TOKEN-HASH".to_vec(),
        };
        let shown =
            format!("{row:?} {new:?} {session_row:?} {signed:?} {invite:?} {caller:?} {:?}", SignIn::SignedIn(Box::new(signed.clone())));
        assert!(!shown.contains("SECRET"), "{shown}");
        let bytes = format!("{:?}", b"SECRET".to_vec());
        assert!(!shown.contains(&bytes[1..10]), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("ming"), "{shown}");
    }

    #[test]
    fn logins_are_trimmed_lower_cased_and_bounded() {
        assert_eq!(normalise_login("  Ming.Li ").unwrap(), "ming.li");
        assert_eq!(normalise_login(" ").unwrap_err().field, "login");
        assert!(normalise_login(&"x".repeat(65)).is_err());
        assert!(normalise_login("a\u{200b}b").is_err());
        assert!(normalise_login("a b").is_err());
        assert!(check_password("password", "short").is_err());
        assert!(check_password("password", &"p".repeat(257)).is_err());
        assert!(check_password("password", "long enough!").is_ok());
    }
}
