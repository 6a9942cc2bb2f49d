//! The console's port on PostgreSQL: `console_users` and `console_sessions` (migration 3).

use chrono::{DateTime, Utc};
use kith_core::ports::{ConsoleRead, ConsoleSessionRow, ConsoleUserRow, ConsoleWrite, NewConsoleUserRow, SignInState};
use tokio_postgres::Row;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

const USER_COLUMNS: &str = "id, shop_id, login, name, role, password_hash, failed_sign_ins, locked_until, invite_hash, \
     invite_expires_at, created_at, last_sign_in_at";

fn row_to_user(row: &Row) -> Result<ConsoleUserRow> {
    Ok(ConsoleUserRow {
        id: get(row, 0)?,
        shop_id: get(row, 1)?,
        login: get(row, 2)?,
        name: get(row, 3)?,
        role: get(row, 4)?,
        password_hash: get(row, 5)?,
        failed_sign_ins: get(row, 6)?,
        locked_until: get::<Option<i64>>(row, 7)?.map(time).transpose()?,
        invite_hash: get(row, 8)?,
        invite_expires_at: get::<Option<i64>>(row, 9)?.map(time).transpose()?,
        created_at: time(get(row, 10)?)?,
        last_sign_in_at: get::<Option<i64>>(row, 11)?.map(time).transpose()?,
    })
}

impl ConsoleRead for Pg<'_> {
    fn user_by_login(&self, login: &str) -> Result<Option<ConsoleUserRow>> {
        self.query_opt(&format!("SELECT {USER_COLUMNS} FROM console_users WHERE login = $1"), &[&login])?
            .as_ref()
            .map(row_to_user)
            .transpose()
    }

    fn user_by_invite(&self, invite_hash: &[u8]) -> Result<Option<ConsoleUserRow>> {
        self.query_opt(&format!("SELECT {USER_COLUMNS} FROM console_users WHERE invite_hash = $1"), &[&invite_hash])?
            .as_ref()
            .map(row_to_user)
            .transpose()
    }

    fn user(&self, shop_id: i64, user_id: i64) -> Result<Option<ConsoleUserRow>> {
        self.query_opt(&format!("SELECT {USER_COLUMNS} FROM console_users WHERE shop_id = $1 AND id = $2"), &[&shop_id, &user_id])?
            .as_ref()
            .map(row_to_user)
            .transpose()
    }

    fn users(&self, shop_id: i64) -> Result<Vec<ConsoleUserRow>> {
        self.query(&format!("SELECT {USER_COLUMNS} FROM console_users WHERE shop_id = $1 ORDER BY created_at, id"), &[&shop_id])?
            .iter()
            .map(row_to_user)
            .collect()
    }

    fn session(&self, token_hash: &[u8]) -> Result<Option<ConsoleSessionRow>> {
        let row = self.query_opt(
            "SELECT token_hash, shop_id, user_id, csrf_token, created_at, expires_at FROM console_sessions WHERE token_hash = $1",
            &[&token_hash],
        )?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ConsoleSessionRow {
            token_hash: get(&row, 0)?,
            shop_id: get(&row, 1)?,
            user_id: get(&row, 2)?,
            csrf_token: get(&row, 3)?,
            created_at: time(get(&row, 4)?)?,
            expires_at: time(get(&row, 5)?)?,
        }))
    }
}

impl ConsoleWrite for Pg<'_> {
    fn insert_user(&self, user: &NewConsoleUserRow<'_>) -> Result<i64> {
        let row = self.query_one(
            "INSERT INTO console_users (shop_id, login, name, role, password_hash, invite_hash, invite_expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &user.shop_id,
                &user.login,
                &user.name,
                &user.role.as_str(),
                &user.password_hash,
                &user.invite_hash,
                &user.invite_expires_at.map(millis),
                &millis(user.created_at),
            ],
        )?;
        get(&row, 0)
    }

    fn set_password(&self, shop_id: i64, user_id: i64, password_hash: &str) -> Result<()> {
        self.execute(
            "UPDATE console_users SET password_hash = $3, invite_hash = NULL, invite_expires_at = NULL WHERE shop_id = $1 AND id = $2",
            &[&shop_id, &user_id, &password_hash],
        )?;
        Ok(())
    }

    fn set_sign_in_state(&self, shop_id: i64, user_id: i64, state: &SignInState) -> Result<()> {
        self.execute(
            "UPDATE console_users SET failed_sign_ins = $3, locked_until = $4, last_sign_in_at = $5 WHERE shop_id = $1 AND id = $2",
            &[&shop_id, &user_id, &state.failed_sign_ins, &state.locked_until.map(millis), &state.last_sign_in_at.map(millis)],
        )?;
        Ok(())
    }

    fn delete_user(&self, shop_id: i64, user_id: i64) -> Result<()> {
        self.execute("DELETE FROM console_users WHERE shop_id = $1 AND id = $2", &[&shop_id, &user_id])?;
        Ok(())
    }

    fn insert_session(&self, session: &ConsoleSessionRow) -> Result<()> {
        self.execute(
            "INSERT INTO console_sessions (token_hash, shop_id, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &session.token_hash,
                &session.shop_id,
                &session.user_id,
                &session.csrf_token,
                &millis(session.created_at),
                &millis(session.expires_at),
            ],
        )?;
        Ok(())
    }

    fn delete_session(&self, shop_id: i64, token_hash: &[u8]) -> Result<()> {
        self.execute("DELETE FROM console_sessions WHERE shop_id = $1 AND token_hash = $2", &[&shop_id, &token_hash])?;
        Ok(())
    }

    fn delete_sessions(&self, shop_id: i64, user_id: i64, keep: Option<&[u8]>) -> Result<()> {
        self.execute(
            "DELETE FROM console_sessions WHERE shop_id = $1 AND user_id = $2 AND ($3::BYTEA IS NULL OR token_hash <> $3)",
            &[&shop_id, &user_id, &keep],
        )?;
        Ok(())
    }

    fn delete_expired_sessions(&self, shop_id: i64, user_id: i64, now: DateTime<Utc>) -> Result<()> {
        self.execute(
            "DELETE FROM console_sessions WHERE shop_id = $1 AND user_id = $2 AND expires_at <= $3",
            &[&shop_id, &user_id, &millis(now)],
        )?;
        Ok(())
    }
}
