//! The merchant console in a real browser: the console's own tests (console/tests, node:test
//! with playwright-core driving Debian's Chromium headless) against a `kith serve` of the demo
//! shop, signed in with the console user `kith demo` printed. One screenshot per screen lands in
//! target/console-screenshots.

use std::path::Path;
use std::process::Command;

use super::{Server, repository};

/// The value after `label` on the banner's line that has it, up to `end`.
fn banner_value<'a>(banner: &'a str, label: &str, end: &str) -> &'a str {
    let line = banner.lines().find(|l| l.contains(label)).unwrap_or_else(|| panic!("no `{label}` in the banner:\n{banner}"));
    let rest = &line[line.find(label).unwrap() + label.len()..];
    rest.split(end).next().unwrap().trim()
}

/// Run every screen's browser tests against the demo shop in `db`; `banner` is what `kith demo` printed.
pub fn browse(dir: &Path, db: &Path, banner: &str) {
    let console = repository().join("console");
    assert!(
        console.join("node_modules/playwright-core").is_dir(),
        "the console's npm packages are missing: `cargo xtask console` installs them (and `cargo xtask test` runs this suite)"
    );
    let login = banner_value(banner, "login ", ",");
    let password = banner_value(banner, "password ", " ");
    let key = banner_value(banner, "API key: ", " ");
    let server = Server::start(dir, db);
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "tests/console.test.mjs"])
        .current_dir(&console)
        .env("KITH_URL", &server.url)
        .env("KITH_LOGIN", login)
        .env("KITH_PASSWORD", password)
        .env("KITH_KEY", key)
        .env("KITH_SCREENSHOTS", repository().join("target/console-screenshots"))
        .output()
        .expect("run node (cargo xtask test installs Node.js)");
    let report = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the console's browser tests failed:\n{report}");
    eprintln!("{report}");
    drop(server);
}
