//! The console's port on SQLite: `console_users` and `console_sessions` (migration 16).

use chrono::{DateTime, Utc};
use kith_core::ports::{ConsoleRead, ConsoleSessionRow, ConsoleUserRow, ConsoleWrite, NewConsoleUserRow, SignInState};
use rusqlite::{OptionalExtension, params};

use super::{CoreResult, Sql, sql};
use crate::{from_ms, to_ms};

const USER_COLUMNS: &str = "id, shop_id, login, name, role, password_hash, failed_sign_ins, locked_until, invite_hash, \
     invite_expires_at, created_at, last_sign_in_at";

fn row_to_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConsoleUserRow> {
    Ok(ConsoleUserRow {
        id: r.get(0)?,
        shop_id: r.get(1)?,
        login: r.get(2)?,
        name: r.get(3)?,
        role: r.get(4)?,
        password_hash: r.get(5)?,
        failed_sign_ins: r.get(6)?,
        locked_until: r.get::<_, Option<i64>>(7)?.map(from_ms),
        invite_hash: r.get(8)?,
        invite_expires_at: r.get::<_, Option<i64>>(9)?.map(from_ms),
        created_at: from_ms(r.get(10)?),
        last_sign_in_at: r.get::<_, Option<i64>>(11)?.map(from_ms),
    })
}

impl Sql<'_> {
    fn one_user(&self, filter: &str, params: impl rusqlite::Params) -> CoreResult<Option<ConsoleUserRow>> {
        sql(self
            .0
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM console_users WHERE {filter}"))
            .and_then(|mut s| s.query_row(params, row_to_user).optional()))
    }
}

impl ConsoleRead for Sql<'_> {
    fn user_by_login(&self, login: &str) -> CoreResult<Option<ConsoleUserRow>> {
        self.one_user("login = ?1", [login])
    }

    fn user_by_invite(&self, invite_hash: &[u8]) -> CoreResult<Option<ConsoleUserRow>> {
        self.one_user("invite_hash = ?1", [invite_hash])
    }

    fn user(&self, shop_id: i64, user_id: i64) -> CoreResult<Option<ConsoleUserRow>> {
        self.one_user("shop_id = ?1 AND id = ?2", [shop_id, user_id])
    }

    fn users(&self, shop_id: i64) -> CoreResult<Vec<ConsoleUserRow>> {
        sql(self
            .0
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM console_users WHERE shop_id = ?1 ORDER BY created_at, id"))
            .and_then(|mut s| s.query_map([shop_id], row_to_user)?.collect()))
    }

    fn session(&self, token_hash: &[u8]) -> CoreResult<Option<ConsoleSessionRow>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT token_hash, shop_id, user_id, csrf_token, created_at, expires_at FROM console_sessions WHERE token_hash = ?1",
            )
            .and_then(|mut s| {
                s.query_row([token_hash], |r| {
                    Ok(ConsoleSessionRow {
                        token_hash: r.get(0)?,
                        shop_id: r.get(1)?,
                        user_id: r.get(2)?,
                        csrf_token: r.get(3)?,
                        created_at: from_ms(r.get(4)?),
                        expires_at: from_ms(r.get(5)?),
                    })
                })
                .optional()
            }))
    }
}

impl ConsoleWrite for Sql<'_> {
    fn insert_user(&self, user: &NewConsoleUserRow<'_>) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO console_users (shop_id, login, name, role, password_hash, invite_hash, invite_expires_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        user.shop_id,
                        user.login,
                        user.name,
                        user.role.as_str(),
                        user.password_hash,
                        user.invite_hash,
                        user.invite_expires_at.map(to_ms),
                        to_ms(user.created_at)
                    ],
                    |r| r.get(0),
                )
            }))
    }

    fn set_password(&self, shop_id: i64, user_id: i64, password_hash: &str) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE console_users SET password_hash = ?3, invite_hash = NULL, invite_expires_at = NULL WHERE shop_id = ?1 AND id = ?2",
            )
            .and_then(|mut s| s.execute(params![shop_id, user_id, password_hash])))?;
        Ok(())
    }

    fn set_sign_in_state(&self, shop_id: i64, user_id: i64, state: &SignInState) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE console_users SET failed_sign_ins = ?3, locked_until = ?4, last_sign_in_at = ?5 WHERE shop_id = ?1 AND id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![shop_id, user_id, state.failed_sign_ins, state.locked_until.map(to_ms), state.last_sign_in_at.map(to_ms)])
            }))?;
        Ok(())
    }

    fn delete_user(&self, shop_id: i64, user_id: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("DELETE FROM console_users WHERE shop_id = ?1 AND id = ?2")
            .and_then(|mut s| s.execute([shop_id, user_id])))?;
        Ok(())
    }

    fn insert_session(&self, session: &ConsoleSessionRow) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO console_sessions (token_hash, shop_id, user_id, csrf_token, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    session.token_hash,
                    session.shop_id,
                    session.user_id,
                    session.csrf_token,
                    to_ms(session.created_at),
                    to_ms(session.expires_at)
                ])
            }))?;
        Ok(())
    }

    fn delete_session(&self, shop_id: i64, token_hash: &[u8]) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("DELETE FROM console_sessions WHERE shop_id = ?1 AND token_hash = ?2")
            .and_then(|mut s| s.execute(params![shop_id, token_hash])))?;
        Ok(())
    }

    fn delete_sessions(&self, shop_id: i64, user_id: i64, keep: Option<&[u8]>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("DELETE FROM console_sessions WHERE shop_id = ?1 AND user_id = ?2 AND (?3 IS NULL OR token_hash <> ?3)")
            .and_then(|mut s| s.execute(params![shop_id, user_id, keep])))?;
        Ok(())
    }

    fn delete_expired_sessions(&self, shop_id: i64, user_id: i64, now: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("DELETE FROM console_sessions WHERE shop_id = ?1 AND user_id = ?2 AND expires_at <= ?3")
            .and_then(|mut s| s.execute(params![shop_id, user_id, to_ms(now)])))?;
        Ok(())
    }
}
