//! `kith`: serve the kernel, administer shops and keys, import shop exports, run the demo, backtest the predictions,
//! and write plugins (`kith plugin new/build/test/pack/publish`).

mod admin;
mod backtest;
mod check;
mod config;
mod console;
mod demo;
mod import;
mod migrate;
mod plugin;
mod serve;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

/// jemalloc for Rust's allocations and, as its symbols replace `malloc` and
/// `free` in this binary, for SQLite's page cache too: requests allocate on a
/// runtime worker and free on a blocking thread (and back), which glibc's
/// arenas handle with locks and consolidation. BENCHMARKS.md has the figures.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "kith", version, about = "Customer-operations kernel for e-commerce shops")]
struct Cli {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, global = true, env = "KITH_CONFIG")]
    config: Option<PathBuf>,
    /// SQLite database file, created if missing.
    #[arg(long, short = 'd', visible_alias = "data", global = true, env = "KITH_DATABASE")]
    database: Option<PathBuf>,
    /// Address `serve` and `demo` listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, global = true, env = "KITH_BIND")]
    bind: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, env = "KITH_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// When the console's session cookie is `Secure` (`[console] cookie_secure`): auto (when
    /// a proxy says `X-Forwarded-Proto: https`), always or never.
    #[arg(long, global = true, env = "KITH_CONSOLE_COOKIE_SECURE", value_enum)]
    console_cookie_secure: Option<config::CookieSecureSetting>,
    /// Start a new database in the --database file when it exists but is empty (0 bytes),
    /// which is otherwise refused: it is more often a truncated database than a new one.
    #[arg(long, global = true)]
    create: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve,
    /// Create shops and API keys.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Import a shop export (CSV) of customers or orders.
    Import(import::ImportArgs),
    /// Create a demo shop with generated data, print an API key, and serve.
    Demo(demo::DemoArgs),
    /// Check the whole database file for damage (SQLite's integrity_check); exits 1 with the findings.
    Check,
    /// Fit the repeat-purchase model (BG/NBD) on a shop's orders up to a date and compare its
    /// predictions with the repeat purchases that followed, per calibration frequency.
    Backtest(backtest::BacktestArgs),
    /// Copy the SQLite database (every shop, or one with --shop) into an empty PostgreSQL
    /// database, then compare each table's rows and checksum on both sides.
    Migrate(migrate::MigrateArgs),
    /// Write plugins: create a project, build it, test it against fixtures in the kernel's plugin host, pack and publish it.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(database) = cli.database {
        config.database = database;
    }
    if let Some(format) = cli.log_format {
        config.log_format = format;
    }
    if let Some(bind) = cli.bind {
        config.bind = bind;
    }
    if let Some(secure) = cli.console_cookie_secure {
        config.console.cookie_secure = secure;
    }
    config::init_logging(config.log_format);
    // `check` reads the file as it is, and never writes to it.
    if cli.create
        && config.postgres_url().is_none()
        && !matches!(cli.command, Command::Check | Command::Backtest(_) | Command::Migrate(_) | Command::Plugin(_))
        && kith_sqlite::Store::init_if_empty(&config.database)?
    {
        eprintln!("started a new database in the empty file {}", config.database.display());
    }
    let result = match cli.command {
        Command::Serve => serve::run(&config),
        Command::Admin(cmd) => admin::run(&config, cmd),
        Command::Import(args) => import::run(&config, args),
        Command::Demo(args) => demo::run(config, args),
        Command::Check => check::run(&config),
        Command::Backtest(args) => backtest::run(&config, args),
        Command::Migrate(args) => migrate::run(&config, args),
        Command::Plugin(cmd) => plugin::run(&config, cmd),
    };
    if let Err(err) = &result
        && let Some(refused) = check::refusal(err)
    {
        eprintln!("Error: {refused}\n{}", check::advice(refused));
        std::process::exit(1);
    }
    result
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks the definition of every subcommand (two flags of one name, say) only when
    /// it parses one, and then panics: this checks them all at once.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    /// `admin console-user` creates with --shop and --role, or acts on an existing login with
    /// --unlock or --reset-password (and then takes neither).
    #[test]
    fn console_user_creates_or_unlocks_or_resets() {
        use clap::Parser;
        let parse = |args: &[&str]| super::Cli::try_parse_from([&["kith", "admin", "console-user"], args].concat());
        assert!(parse(&["--shop", "1", "--login", "ming", "--role", "owner"]).is_ok());
        assert!(parse(&["--login", "ming", "--unlock"]).is_ok());
        assert!(parse(&["--login", "ming", "--reset-password"]).is_ok());
        assert!(parse(&["--login", "ming"]).is_err(), "a new user needs --shop and --role");
        assert!(parse(&["--login", "ming", "--unlock", "--shop", "1"]).is_err());
        assert!(parse(&["--login", "ming", "--reset-password", "--role", "owner"]).is_err());
    }
}
