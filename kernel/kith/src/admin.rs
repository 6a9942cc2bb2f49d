//! `kith admin`: shops and keys from the command line.

use anyhow::Result;
use clap::Subcommand;
use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::auth::{Role, Scope};
use kith_domain::model::{NewKey, NewShop};

use crate::config::Config;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a shop.
    CreateShop {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "Asia/Shanghai")]
        time_zone: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
        /// ISO 3166 country for phone numbers without a country code.
        #[arg(long, default_value = "CN")]
        region: String,
    },
    /// List shops.
    ListShops,
    /// Create an API key and print its token (shown only this once).
    CreateKey {
        /// The shop the key belongs to; omit with --role admin.
        #[arg(long)]
        shop: Option<i64>,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Explicit scopes (repeatable); the role's defaults when absent.
        #[arg(long = "scope", value_parser = parse_scope)]
        scopes: Vec<Scope>,
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// Revoke an API key by id (a server running on the same database refuses it within 5 s).
    RevokeKey { id: String },
    /// List API keys, of one shop or all.
    ListKeys {
        #[arg(long)]
        shop: Option<i64>,
    },
    /// Create a console user of a shop (a person who signs in to the merchant console) and
    /// print the generated password (shown only this once). With --unlock or
    /// --reset-password, act on an existing login instead.
    ConsoleUser {
        /// The shop of a new user.
        #[arg(long, required_unless_present_any = ["unlock", "reset_password"])]
        shop: Option<i64>,
        /// 1-64 characters, unique across the kernel (compared lower-cased).
        #[arg(long)]
        login: String,
        /// owner, operator or analyst (a new user).
        #[arg(long, value_parser = parse_role, required_unless_present_any = ["unlock", "reset_password"])]
        role: Option<Role>,
        #[arg(long, conflicts_with_all = ["unlock", "reset_password"])]
        name: Option<String>,
        /// End the existing user's lock and clear their count of failed sign-ins.
        #[arg(long, conflicts_with_all = ["shop", "role"])]
        unlock: bool,
        /// Give the existing user a new generated password (printed once), which also ends
        /// their lock and every session of theirs.
        #[arg(long, conflicts_with_all = ["shop", "role"])]
        reset_password: bool,
    },
    /// Install a plugin package (a folder with plugin.toml and plugin.wasm, or a .tar.gz) into the catalogue.
    InstallPlugin { path: std::path::PathBuf },
    /// List the plugin catalogue.
    ListPlugins,
    /// Enable a plugin in a shop, or change its version, configuration or grant.
    EnablePlugin {
        #[arg(long)]
        shop: i64,
        plugin: String,
        /// A semver requirement; the newest installed version by default.
        #[arg(long)]
        version: Option<String>,
        /// The plugin's configuration as JSON, e.g. `--plugin-config '{"threshold": 10000}'`.
        // Not `--config`: that is the global flag naming kith's own TOML file, and two
        // arguments of one name make clap panic when it parses the command line.
        #[arg(long = "plugin-config", value_name = "JSON", default_value = "{}")]
        plugin_config: String,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse()
}

/// A console user's password made up for them: 16 characters of an alphabet without look-alikes
/// (about 93 bits).
pub(crate) fn new_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..16).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn run(config: &Config, cmd: AdminCommand) -> Result<()> {
    let store = config.open_store()?;
    let actor = Actor::cli("cli");
    match cmd {
        AdminCommand::InstallPlugin { path } => {
            let package = kith_bus::Package::from_path(&path)?;
            let bus = config.open_bus(store.clone())?;
            print_json(&bus.install(&package, &actor)?.0)
        }
        AdminCommand::ListPlugins => print_json(&store.list_plugins()?),
        AdminCommand::EnablePlugin { shop, plugin, version, plugin_config } => {
            let config_value = serde_json::from_str(&plugin_config).map_err(|e| anyhow::anyhow!("--plugin-config is not JSON: {e}"))?;
            let bus = config.open_bus(store.clone())?;
            let request = kith_bus::EnableRequest { version, config: Some(config_value), ..Default::default() };
            print_json(&bus.enable(shop, &plugin, &request, &actor)?.0)
        }
        AdminCommand::CreateShop { name, time_zone, currency, region } => {
            print_json(&store.create_shop(&NewShop { name, time_zone, currency, region }, &actor)?)
        }
        AdminCommand::ListShops => print_json(&store.list_shops()?),
        AdminCommand::CreateKey { shop, role, scopes, name } => {
            let scopes = (!scopes.is_empty()).then_some(scopes);
            let created = store.create_key(&NewKey { shop_id: shop, name, role, scopes }, &actor)?;
            print_json(&created)
        }
        AdminCommand::RevokeKey { id } => print_json(&store.revoke_key(None, &id, &actor)?),
        AdminCommand::ListKeys { shop } => print_json(&store.list_keys(shop)?),
        AdminCommand::ConsoleUser { login, unlock, reset_password, .. } if unlock || reset_password => {
            let now = chrono::Utc::now();
            let (shop, user) =
                store.console_user_by_login(&login, now)?.ok_or_else(|| anyhow::anyhow!("no console user has the login `{login}`"))?;
            if reset_password {
                let password = new_password();
                let user = store.reset_console_password(shop, user.id, &password, &actor, now)?;
                return print_json(&serde_json::json!({"user": user, "password": password}));
            }
            print_json(&serde_json::json!({"user": store.unlock_console_user(shop, user.id, &actor, now)?}))
        }
        AdminCommand::ConsoleUser { shop, login, role, name, .. } => {
            let (Some(shop), Some(role)) = (shop, role) else { anyhow::bail!("a new console user needs --shop and --role") };
            let password = new_password();
            let new = kith_domain::model::NewConsoleUser { login, name, role };
            let created = store.create_console_user(shop, &new, Some(&password), &actor, chrono::Utc::now())?;
            print_json(&serde_json::json!({"user": created.user, "password": password}))
        }
    }
}

#[cfg(test)]
mod tests {
    use kith_core::console::SignIn;

    use super::*;

    #[test]
    fn console_user_unlocks_and_resets_an_existing_login() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { database: dir.path().join("kith.db"), ..Config::default() };
        let store = config.open_store().unwrap();
        let shop = store
            .create_shop(
                &NewShop { name: "Tea".into(), time_zone: "UTC".into(), currency: "CNY".into(), region: "CN".into() },
                &Actor::cli("t"),
            )
            .unwrap()
            .id;
        let new = kith_domain::model::NewConsoleUser { login: "ming".into(), name: None, role: Role::Owner };
        let id = store.create_console_user(shop, &new, Some("tea leaves 2026"), &Actor::cli("t"), chrono::Utc::now()).unwrap().user.id;
        let now = chrono::Utc::now();
        let SignIn::SignedIn(session) = store.console_sign_in("ming", "tea leaves 2026", now).unwrap() else { panic!("signed in") };
        for _ in 0..5 {
            store.console_sign_in("ming", "wrong password", now).unwrap();
        }
        let cmd = |unlock, reset_password| AdminCommand::ConsoleUser {
            shop: None,
            login: " MING".into(),
            role: None,
            name: None,
            unlock,
            reset_password,
        };
        run(&config, cmd(true, false)).unwrap();
        assert!(matches!(store.console_sign_in("ming", "tea leaves 2026", chrono::Utc::now()).unwrap(), SignIn::SignedIn(_)));
        run(&config, cmd(false, true)).unwrap();
        assert!(store.console_session(&session.token, chrono::Utc::now()).unwrap().is_none(), "a reset ends the sessions");
        assert!(matches!(store.console_sign_in("ming", "tea leaves 2026", chrono::Utc::now()).unwrap(), SignIn::Refused));
        let log = store.list_audit(shop, None, 100).unwrap();
        for action in ["console.user.unlock", "console.password.reset"] {
            let entry = log.iter().find(|e| e.action == action).unwrap_or_else(|| panic!("{action}"));
            assert_eq!(entry.target.as_deref(), Some(format!("user:{id}").as_str()));
        }
        let missing =
            AdminCommand::ConsoleUser { shop: None, login: "nobody".into(), role: None, name: None, unlock: true, reset_password: false };
        assert!(run(&config, missing).is_err());
    }
}
