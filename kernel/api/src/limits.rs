//! Bounds on the console's sign-in: the kernel-wide bucket of sign-in attempts, the
//! failures of unknown logins (counted in memory so that they lock as a known login does,
//! with no write), and when the session cookie is `Secure`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use kith_core::console::{LOCK_AFTER, LOCK_FOR};

/// When the session cookie carries `Secure` (kith.toml `[console] cookie_secure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CookieSecure {
    /// When the request came through a proxy over HTTPS (`X-Forwarded-Proto: https`): the
    /// kernel itself serves plain HTTP, where a `Secure` cookie would not be sent back.
    #[default]
    Auto,
    Always,
    Never,
}

impl std::str::FromStr for CookieSecure {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(CookieSecure::Auto),
            "always" => Ok(CookieSecure::Always),
            "never" => Ok(CookieSecure::Never),
            other => Err(format!("cookie_secure must be auto, always or never, not `{other}`")),
        }
    }
}

/// The sign-in attempts the kernel takes: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignInRate {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for SignInRate {
    fn default() -> Self {
        SignInRate { per_second: 20.0, burst: 40.0 }
    }
}

/// A token bucket, refilled by the monotonic clock.
pub(crate) struct TokenBucket {
    rate: SignInRate,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub(crate) fn new(rate: SignInRate) -> Self {
        TokenBucket { rate, state: Mutex::new((rate.burst, Instant::now())) }
    }

    /// Take a token; when there is none, the seconds until there is one.
    pub(crate) fn take(&self) -> Result<(), u32> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let tokens = (state.0 + now.duration_since(state.1).as_secs_f64() * self.rate.per_second).min(self.rate.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            return Ok(());
        }
        *state = (tokens, now);
        let wait = if self.rate.per_second > 0.0 { ((1.0 - tokens) / self.rate.per_second).ceil() } else { 60.0 };
        Err((wait as u32).max(1))
    }
}

/// Most unknown logins remembered; past it, those whose window ended are dropped, and if
/// none did, all are (an attacker spraying logins then gets 401s, as they would anyway).
const UNKNOWN_CAP: usize = 10_000;

#[derive(Clone, Copy)]
struct Failures {
    count: i64,
    last: DateTime<Utc>,
    locked_until: Option<DateTime<Utc>>,
}

/// Failed sign-ins of logins no user has, by normalised login, by the kernel's clock:
/// [`LOCK_AFTER`] in a row lock that login for [`LOCK_FOR`], as they would a user's. A
/// count is forgotten [`LOCK_FOR`] after its last failure.
#[derive(Default)]
pub(crate) struct UnknownLogins(Mutex<HashMap<String, Failures>>);

impl UnknownLogins {
    /// When the login's lock ends, if it is locked at `now`.
    pub(crate) fn locked(&self, login: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(login).and_then(|f| f.locked_until).filter(|until| *until > now)
    }

    /// Count a failure of `login` at `now`; when the lock ends, if this one locked it.
    pub(crate) fn fail(&self, login: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= UNKNOWN_CAP && !map.contains_key(login) {
            map.retain(|_, f| f.last + LOCK_FOR > now || f.locked_until.is_some_and(|u| u > now));
            if map.len() >= UNKNOWN_CAP {
                map.clear();
            }
        }
        let entry = map.entry(login.to_owned()).or_insert(Failures { count: 0, last: now, locked_until: None });
        if entry.last + LOCK_FOR <= now || entry.locked_until.is_some_and(|u| u <= now) {
            *entry = Failures { count: 0, last: now, locked_until: None };
        }
        entry.count += 1;
        entry.last = now;
        if entry.count >= LOCK_AFTER {
            let until = now + LOCK_FOR;
            *entry = Failures { count: 0, last: now, locked_until: Some(until) };
            return Some(until);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_lets_a_burst_through_then_says_when_to_come_back() {
        let bucket = TokenBucket::new(SignInRate { per_second: 0.5, burst: 2.0 });
        assert_eq!(bucket.take(), Ok(()));
        assert_eq!(bucket.take(), Ok(()));
        assert_eq!(bucket.take(), Err(2));
    }

    #[test]
    fn unknown_logins_lock_at_the_fifth_failure_and_forget_after_the_window() {
        let logins = UnknownLogins::default();
        let t0 = Utc::now();
        for _ in 1..LOCK_AFTER {
            assert_eq!(logins.fail("nobody", t0), None);
        }
        assert_eq!(logins.fail("nobody", t0), Some(t0 + LOCK_FOR));
        assert_eq!(logins.locked("nobody", t0 + LOCK_FOR - chrono::Duration::seconds(1)), Some(t0 + LOCK_FOR));
        assert_eq!(logins.locked("nobody", t0 + LOCK_FOR), None);
        assert_eq!(logins.locked("someone", t0), None);
        for _ in 1..LOCK_AFTER {
            logins.fail("someone", t0);
        }
        assert_eq!(logins.fail("someone", t0 + LOCK_FOR), None, "the count started again after the window");
    }
}
