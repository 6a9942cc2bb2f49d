//! Console users and sessions (`kith_core::console`, over the `ConsoleRead` and
//! `ConsoleWrite` ports): sign-in and its lock-out by the test clock, sessions' absolute
//! expiry and sign-out, invitations accepted once and expiring, removal ending sessions
//! and sparing the last active owner, password changes, logins unique across shops, and
//! the ports answering only within the shop.

use chrono::Duration;
use kith_core::console::{PasswordChange, SignIn, SignedIn};
use kith_core::prelude::*;
use kith_core::{Actor, Error, Storage};
use kith_domain::auth::Role;
use kith_domain::model::{ConsoleUserStatus, NewConsoleUser, NewKey};

use crate::{Factory, day};

const PASSWORD: &str = "tea leaves 2026";

fn new_user(login: &str, role: Role) -> NewConsoleUser {
    NewConsoleUser { login: login.into(), name: Some("Li Ming".into()), role }
}

/// A user of the shop with [`PASSWORD`]; their id.
fn user(s: &dyn Storage, shop: i64, login: &str, role: Role) -> i64 {
    s.create_console_user(shop, &new_user(login, role), Some(PASSWORD), &Actor::cli("conformance"), day(0, 0))
        .expect("the console user is created")
        .user
        .id
}

fn signed_in(outcome: SignIn) -> SignedIn {
    match outcome {
        SignIn::SignedIn(signed_in) => *signed_in,
        other => panic!("expected a session, got {other:?}"),
    }
}

fn actions(s: &dyn Storage, shop: i64) -> Vec<String> {
    let mut entries = s.list_audit(shop, None, 1000).unwrap();
    entries.reverse();
    entries.into_iter().map(|e| e.action).collect()
}

/// Five wrong passwords in a row lock the user for 15 minutes of the clock, whatever the
/// password; a success resets the count; unknown logins are refused alike; everything
/// is audited in the user's shop.
pub fn console_sign_in_locks_after_five_failures_until_fifteen_minutes_pass(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Tea House", "Asia/Shanghai");
    let id = user(s, shop, "Ming", Role::Operator);
    let t0 = day(1, 0);

    let first = signed_in(s.console_sign_in("  MING ", PASSWORD, t0).unwrap());
    let session = first.session;
    assert_eq!(session.user.as_ref().map(|u| (u.id, u.login.as_str())), Some((id, "ming")));
    assert_eq!(session.role, Role::Operator);
    assert_eq!(session.scopes, Role::Operator.default_scopes());
    assert_eq!(session.shop.id, shop);
    assert_eq!(session.expires_at, Some(t0 + Duration::hours(12)));
    assert!(session.csrf_token.as_ref().is_some_and(|t| t.len() >= 43));
    assert_eq!(session.user.unwrap().last_sign_in_at, Some(t0));
    assert!(matches!(s.console_sign_in("nobody", PASSWORD, t0).unwrap(), SignIn::UnknownLogin));

    // Four failures, then a success: the count starts again.
    for _ in 0..4 {
        assert!(matches!(s.console_sign_in("ming", "wrong password", t0).unwrap(), SignIn::Refused));
    }
    signed_in(s.console_sign_in("ming", PASSWORD, t0).unwrap());
    for _ in 0..4 {
        assert!(matches!(s.console_sign_in("ming", "wrong password", t0).unwrap(), SignIn::Refused));
    }
    let until = t0 + Duration::minutes(15);
    assert!(matches!(s.console_sign_in("ming", "wrong password", t0).unwrap(), SignIn::Locked { until: u } if u == until));
    let users = s.console_users(shop, t0).unwrap();
    assert_eq!(users[0].status, ConsoleUserStatus::Locked);
    let just_before = until - Duration::milliseconds(1);
    let before = actions(s, shop).len();
    for _ in 0..3 {
        assert!(
            matches!(s.console_sign_in("ming", PASSWORD, just_before).unwrap(), SignIn::Locked { .. }),
            "locked, whatever the password"
        );
    }
    assert_eq!(actions(s, shop).len(), before, "attempts refused while locked write nothing");
    assert_eq!(s.console_users(shop, until).unwrap()[0].status, ConsoleUserStatus::Active);
    signed_in(s.console_sign_in("ming", PASSWORD, until).unwrap());

    let log = actions(s, shop);
    let count = |action: &str| log.iter().filter(|a| *a == action).count();
    assert_eq!(count("console.sign_in"), 3, "{log:?}");
    assert_eq!(count("console.sign_in.failed"), 9, "{log:?}");
    assert_eq!(count("console.user.locked"), 1, "{log:?}");
    assert_eq!(count("console.sign_in.refused"), 0, "{log:?}");
    let entry = &s.list_audit(shop, None, 1).unwrap()[0];
    assert_eq!(entry.key_id.as_deref(), Some(format!("user:{id}").as_str()));

    // A login is unique across the kernel, compared lower-cased.
    let other = backend.create_shop("Other", "UTC");
    let taken = s.create_console_user(other, &new_user(" MING", Role::Owner), Some(PASSWORD), &Actor::cli("c"), t0);
    assert!(matches!(taken, Err(Error::Conflict(_))), "{taken:?}");
    let short = s.create_console_user(other, &new_user("new", Role::Owner), Some("short"), &Actor::cli("c"), t0);
    assert!(matches!(short, Err(Error::Invalid(ref f)) if f.field == "password"), "{short:?}");
    let admin = s.create_console_user(other, &new_user("new", Role::Admin), Some(PASSWORD), &Actor::cli("c"), t0);
    assert!(matches!(admin, Err(Error::Invalid(ref f)) if f.field == "role"), "{admin:?}");
    assert!(s.console_users(other, t0).unwrap().is_empty(), "nothing refused was written");
}

/// A session authenticates until 12 hours after sign-in (absolute), and not after sign-out;
/// a password change ends the user's other sessions.
pub fn console_sessions_expire_after_twelve_hours_and_end_at_sign_out(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Tea House", "Asia/Shanghai");
    let id = user(s, shop, "ming", Role::Analyst);
    let t0 = day(1, 0);
    let one = signed_in(s.console_sign_in("ming", PASSWORD, t0).unwrap());

    let caller = s.console_session(&one.token, t0 + Duration::hours(11)).unwrap().expect("the session is live");
    assert_eq!((caller.shop_id, caller.user.id), (shop, id));
    assert_eq!(caller.principal.key_id, format!("user:{id}"));
    assert_eq!((caller.principal.shop_id, caller.principal.role), (Some(shop), Role::Analyst));
    assert_eq!(caller.principal.scopes, Role::Analyst.default_scopes());
    assert_eq!(Some(caller.csrf_token.clone()), one.session.csrf_token);
    let end = t0 + Duration::hours(12);
    assert!(s.console_session(&one.token, end - Duration::milliseconds(1)).unwrap().is_some());
    assert!(s.console_session(&one.token, end).unwrap().is_none(), "expired at 12 hours, however active");
    assert!(s.console_session("not a token", t0).unwrap().is_none());

    let two = signed_in(s.console_sign_in("ming", PASSWORD, t0).unwrap());
    let three = signed_in(s.console_sign_in("ming", PASSWORD, t0).unwrap());
    assert_ne!(two.token, three.token);
    let caller = s.console_session(&two.token, t0).unwrap().unwrap();
    s.console_sign_out(&caller, t0).unwrap();
    assert!(s.console_session(&two.token, t0).unwrap().is_none(), "signed out");
    assert!(s.console_session(&three.token, t0).unwrap().is_some(), "another session goes on");

    // A password change: the wrong current password changes nothing; the right one ends the others.
    let four = signed_in(s.console_sign_in("ming", PASSWORD, t0).unwrap());
    let caller = s.console_session(&four.token, t0).unwrap().unwrap();
    let wrong = s.change_console_password(&caller, "not my password", "a new password", t0).unwrap();
    assert!(matches!(wrong, PasswordChange::Wrong), "{wrong:?}");
    let PasswordChange::Changed(five) = s.change_console_password(&caller, PASSWORD, "a new password", t0).unwrap() else {
        panic!("the password is changed")
    };
    assert!(s.console_session(&three.token, t0).unwrap().is_none(), "the other sessions ended");
    assert!(s.console_session(&four.token, t0).unwrap().is_none(), "the session that changed it is replaced");
    let rotated = s.console_session(&five.token, t0).unwrap().expect("by a new session");
    assert_ne!(Some(rotated.csrf_token.clone()), four.session.csrf_token, "with a new CSRF token");
    assert_eq!(Some(rotated.csrf_token), five.session.csrf_token);
    assert!(matches!(s.console_sign_in("ming", PASSWORD, t0).unwrap(), SignIn::Refused));
    signed_in(s.console_sign_in("ming", "a new password", t0).unwrap());
    let log = actions(s, shop);
    assert!(log.contains(&"console.sign_out".to_owned()) && log.contains(&"console.password.change".to_owned()), "{log:?}");
    assert!(log.contains(&"console.password.change_failed".to_owned()), "{log:?}");
}

/// A wrong current password in a password change counts toward the lock as a failed
/// sign-in does: the fifth in a row locks the user, and a locked user's change is refused
/// without a check or a write.
pub fn console_password_change_failures_lock_the_user(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Tea House", "Asia/Shanghai");
    user(s, shop, "ming", Role::Operator);
    let t0 = day(1, 0);
    let session = signed_in(s.console_sign_in("ming", PASSWORD, t0).unwrap());
    let caller = s.console_session(&session.token, t0).unwrap().unwrap();
    assert!(matches!(s.console_sign_in("ming", "wrong password", t0).unwrap(), SignIn::Refused));
    for _ in 0..3 {
        assert!(matches!(s.change_console_password(&caller, "not my password", "a new password", t0).unwrap(), PasswordChange::Wrong));
    }
    let until = t0 + Duration::minutes(15);
    let locked = s.change_console_password(&caller, "not my password", "a new password", t0).unwrap();
    assert!(matches!(locked, PasswordChange::Locked { until: u } if u == until), "sign-in and change failures add up: {locked:?}");
    let before = actions(s, shop).len();
    let right = s.change_console_password(&caller, PASSWORD, "a new password", t0).unwrap();
    assert!(matches!(right, PasswordChange::Locked { .. }), "locked, whatever the password: {right:?}");
    assert!(matches!(s.console_sign_in("ming", PASSWORD, t0).unwrap(), SignIn::Locked { .. }));
    assert_eq!(actions(s, shop).len(), before, "refused while locked: nothing written");
    let log = actions(s, shop);
    assert_eq!(log.iter().filter(|a| *a == "console.password.change_failed").count(), 4, "{log:?}");
    assert_eq!(log.iter().filter(|a| *a == "console.user.locked").count(), 1, "{log:?}");
}

/// An owner (or the command line) ends a lock and clears the count; a reset password
/// ends the user's sessions and lock; both are audited.
pub fn console_unlock_and_password_reset_give_a_locked_user_back(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Tea House", "Asia/Shanghai");
    let other = backend.create_shop("Other", "UTC");
    let id = user(s, shop, "ming", Role::Owner);
    let t0 = day(1, 0);
    let session = signed_in(s.console_sign_in("ming", PASSWORD, t0).unwrap());
    for _ in 0..5 {
        s.console_sign_in("ming", "wrong password", t0).unwrap();
    }
    assert!(matches!(s.console_sign_in("ming", PASSWORD, t0).unwrap(), SignIn::Locked { .. }));
    let elsewhere = s.unlock_console_user(other, id, &Actor::key("other"), t0);
    assert!(matches!(elsewhere, Err(Error::NotFound(_))), "{elsewhere:?}");
    let unlocked = s.unlock_console_user(shop, id, &Actor::cli("cli"), t0).unwrap();
    assert_eq!(unlocked.status, ConsoleUserStatus::Active);
    let row = s.read(|tx| tx.console().user(shop, id)).unwrap().unwrap();
    assert_eq!((row.failed_sign_ins, row.locked_until), (0, None));
    signed_in(s.console_sign_in("ming", PASSWORD, t0).unwrap());

    for _ in 0..5 {
        s.console_sign_in("ming", "wrong password", t0).unwrap();
    }
    let (found_shop, found) = s.console_user_by_login(" MING", t0).unwrap().expect("found by login");
    assert_eq!((found_shop, found.id, found.status), (shop, id, ConsoleUserStatus::Locked));
    assert!(s.console_user_by_login("nobody", t0).unwrap().is_none());
    let short = s.reset_console_password(shop, id, "short", &Actor::cli("cli"), t0);
    assert!(matches!(short, Err(Error::Invalid(ref f)) if f.field == "password"), "{short:?}");
    let reset = s.reset_console_password(shop, id, "a brand new password", &Actor::cli("cli"), t0).unwrap();
    assert_eq!(reset.status, ConsoleUserStatus::Active);
    assert!(s.console_session(&session.token, t0).unwrap().is_none(), "a reset ends the sessions");
    assert!(matches!(s.console_sign_in("ming", PASSWORD, t0).unwrap(), SignIn::Refused));
    signed_in(s.console_sign_in("ming", "a brand new password", t0).unwrap());
    let log = actions(s, shop);
    for action in ["console.user.unlock", "console.password.reset"] {
        assert!(log.iter().any(|a| a == action), "{action} in {log:?}");
    }
}

/// Removing a console user revokes the keys they created, and the keys made with those,
/// in the same transaction; other keys go on. The removal's audit entry lists them.
pub fn console_removal_revokes_the_users_keys(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Tea House", "Asia/Shanghai");
    user(s, shop, "owner", Role::Owner);
    let clerk = user(s, shop, "clerk", Role::Owner);
    let t0 = day(1, 0);
    let key = |name: &str, actor: &Actor| {
        s.create_key(&NewKey { shop_id: Some(shop), name: name.into(), role: Role::App, scopes: None }, actor).unwrap()
    };
    let by_clerk = key("by clerk", &Actor::key(&format!("user:{clerk}")));
    assert_eq!(by_clerk.key.created_by.as_deref(), Some(format!("user:{clerk}").as_str()));
    let by_that_key = key("by the clerk's key", &Actor::key(&by_clerk.key.id));
    assert_eq!(by_that_key.key.created_by.as_deref(), Some(by_clerk.key.id.as_str()));
    let by_cli = key("by the cli", &Actor::cli("cli"));
    assert_eq!(by_cli.key.created_by.as_deref(), Some("cli:cli"));
    assert!(s.authenticate(&by_clerk.token).unwrap().is_some());

    s.remove_console_user(shop, clerk, None, &Actor::cli("cli"), t0).unwrap();
    assert!(s.authenticate(&by_clerk.token).unwrap().is_none(), "the removed user's key is revoked");
    assert!(s.authenticate(&by_that_key.token).unwrap().is_none(), "and the keys made with it");
    assert!(s.authenticate(&by_cli.token).unwrap().is_some(), "others go on");
    let keys = s.list_keys(Some(shop)).unwrap();
    let revoked = |id: &str| keys.iter().find(|k| k.id == id).is_some_and(|k| k.revoked_at.is_some());
    assert!(revoked(&by_clerk.key.id) && revoked(&by_that_key.key.id) && !revoked(&by_cli.key.id));
    let entry = s.list_audit(shop, None, 100).unwrap().into_iter().find(|e| e.action == "console.user.remove").unwrap();
    let listed: Vec<String> = serde_json::from_value(entry.detail["revoked_keys"].clone()).unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&by_clerk.key.id) && listed.contains(&by_that_key.key.id));
}

/// A removed user's id is never given to a new user (SQLite's AUTOINCREMENT, PostgreSQL's
/// identity), so `user:<id>` in the audit log names one person.
pub fn console_user_ids_are_never_reused(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Tea House", "Asia/Shanghai");
    user(s, shop, "owner", Role::Owner);
    let gone = user(s, shop, "gone", Role::Analyst);
    s.remove_console_user(shop, gone, None, &Actor::cli("cli"), day(1, 0)).unwrap();
    let next = user(s, shop, "next", Role::Analyst);
    assert!(next > gone, "{next} after {gone}");
}

/// An invited user cannot sign in; their invitation sets the password once, within 72 hours.
pub fn console_invites_are_accepted_once_and_expire(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Tea House", "Asia/Shanghai");
    user(s, shop, "owner", Role::Owner);
    let t0 = day(1, 0);
    let owner = Actor::key("user:1");
    let created = s.create_console_user(shop, &new_user("Clerk", Role::Operator), None, &owner, t0).unwrap();
    let invite = created.invite.expect("an invitation");
    assert_eq!(invite.expires_at, t0 + Duration::hours(72));
    assert_eq!(created.user.status, ConsoleUserStatus::Invited);
    assert!(matches!(s.console_sign_in("clerk", "anything at all", t0).unwrap(), SignIn::Refused), "not active yet");

    let short = s.accept_console_invite(&invite.token, "short", t0);
    assert!(matches!(short, Err(Error::Invalid(ref f)) if f.field == "password"), "{short:?}");
    let unknown = s.accept_console_invite("made-up", PASSWORD, t0);
    assert!(matches!(unknown, Err(Error::Invalid(ref f)) if f.field == "token"), "{unknown:?}");
    let accepted = s.accept_console_invite(&invite.token, PASSWORD, t0 + Duration::hours(1)).unwrap();
    assert_eq!(accepted.session.user.as_ref().map(|u| u.status), Some(ConsoleUserStatus::Active));
    assert!(s.console_session(&accepted.token, t0 + Duration::hours(1)).unwrap().is_some(), "accepting signs in");
    let again = s.accept_console_invite(&invite.token, "another password", t0 + Duration::hours(2));
    assert!(matches!(again, Err(Error::Invalid(ref f)) if f.field == "token"), "accepted once only: {again:?}");
    signed_in(s.console_sign_in("clerk", PASSWORD, t0 + Duration::hours(2)).unwrap());

    let late = s.create_console_user(shop, &new_user("late", Role::Analyst), None, &owner, t0).unwrap().invite.unwrap();
    let expired = s.accept_console_invite(&late.token, PASSWORD, t0 + Duration::hours(72));
    assert!(matches!(expired, Err(Error::Invalid(ref f)) if f.field == "token"), "expired at 72 hours: {expired:?}");
    let log = actions(s, shop);
    for action in ["console.user.invite", "console.invite.accept", "console.sign_in"] {
        assert!(log.iter().any(|a| a == action), "{action} in {log:?}");
    }
}

/// Removing a user ends their sessions; no one removes themselves or the last active owner.
pub fn console_removal_ends_sessions_and_spares_the_last_owner(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Tea House", "Asia/Shanghai");
    let owner = user(s, shop, "owner", Role::Owner);
    let clerk = user(s, shop, "clerk", Role::Operator);
    let t0 = day(1, 0);
    let session = signed_in(s.console_sign_in("clerk", PASSWORD, t0).unwrap());
    let by_owner = Actor::key(&format!("user:{owner}"));

    let own = s.remove_console_user(shop, owner, Some(owner), &by_owner, t0);
    assert!(matches!(own, Err(Error::Conflict(_))), "{own:?}");
    let last = s.remove_console_user(shop, owner, None, &Actor::key("key1"), t0);
    assert!(matches!(last, Err(Error::Conflict(_))), "the last active owner: {last:?}");
    // An invited owner is no active owner: the first is still the last.
    s.create_console_user(shop, &new_user("second", Role::Owner), None, &by_owner, t0).unwrap();
    let last = s.remove_console_user(shop, owner, None, &Actor::key("key1"), t0);
    assert!(matches!(last, Err(Error::Conflict(_))), "{last:?}");

    s.remove_console_user(shop, clerk, Some(owner), &by_owner, t0).unwrap();
    assert!(s.console_session(&session.token, t0).unwrap().is_none(), "the removed user's session ended");
    assert!(matches!(s.console_sign_in("clerk", PASSWORD, t0).unwrap(), SignIn::UnknownLogin));
    let gone = s.remove_console_user(shop, clerk, Some(owner), &by_owner, t0);
    assert!(matches!(gone, Err(Error::NotFound(_))), "{gone:?}");
    let logins: Vec<String> = s.console_users(shop, t0).unwrap().into_iter().map(|u| u.login).collect();
    assert_eq!(logins, ["owner", "second"]);
    assert!(actions(s, shop).contains(&"console.user.remove".to_owned()));

    // With another active owner, the first may go.
    user(s, shop, "third", Role::Owner);
    s.remove_console_user(shop, owner, None, &Actor::key("key1"), t0).unwrap();
}

/// Another shop's users and sessions are not found, not listed and not changed.
pub fn console_ports_answer_only_within_the_shop(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Tea House", "Asia/Shanghai");
    let other = backend.create_shop("Other", "UTC");
    let id = user(s, shop, "ming", Role::Owner);
    user(s, shop, "second", Role::Owner);
    let t0 = day(1, 0);
    let session = signed_in(s.console_sign_in("ming", PASSWORD, t0).unwrap());
    let hash = kith_core::console::token_hash(&session.token);

    assert!(s.console_users(other, t0).unwrap().is_empty());
    let removed = s.remove_console_user(other, id, None, &Actor::key("other"), t0);
    assert!(matches!(removed, Err(Error::NotFound(_))), "{removed:?}");
    s.write(|tx| {
        assert!(tx.console().user(other, id)?.is_none());
        let w = tx.console_writer();
        w.set_password(other, id, "$argon2id$not-a-hash")?;
        w.set_sign_in_state(
            other,
            id,
            &kith_core::ports::SignInState { failed_sign_ins: 4, locked_until: Some(t0 + Duration::days(1)), last_sign_in_at: None },
        )?;
        w.delete_session(other, &hash)?;
        w.delete_sessions(other, id, None)?;
        w.delete_expired_sessions(other, id, t0 + Duration::days(2))?;
        w.delete_user(other, id)?;
        Ok(())
    })
    .unwrap();
    let row = s.read(|tx| tx.console().user(shop, id)).unwrap().expect("the user is still there");
    assert_eq!((row.failed_sign_ins, row.locked_until, row.last_sign_in_at), (0, None, Some(t0)));
    assert!(row.password_hash.is_some_and(|h| h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")));
    assert!(s.console_session(&session.token, t0).unwrap().is_some(), "the session is still there");
    signed_in(s.console_sign_in("ming", PASSWORD, t0).unwrap());
}
