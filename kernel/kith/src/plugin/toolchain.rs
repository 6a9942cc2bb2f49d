//! The build tools of JavaScript and Python plugins, pinned, installed from the registries into
//! `$KITH_CACHE/toolchains` on first use and offline after that. Rust plugins use the cargo on the path.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::assets;

/// componentize-py from PyPI: the Python interpreter and the bindings, made into a component.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The installed JavaScript tools (`sdk/js/toolchain`'s lockfile, `npm ci`): a folder with `node_modules`.
pub fn js() -> Result<PathBuf> {
    let (manifest, lock) = match assets::source() {
        Some(root) => {
            let dir = root.join("sdk/js/toolchain");
            let read = |name: &str| std::fs::read(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()));
            (read("package.json")?, read("package-lock.json")?)
        }
        None => {
            let file = |name: &str| {
                assets::JS_TOOLCHAIN
                    .get_file(name)
                    .map(|f| f.contents().to_vec())
                    .with_context(|| format!("this kith carries no JavaScript toolchain {name}"))
            };
            (file("package.json")?, file("package-lock.json")?)
        }
    };
    let digest = &kith_host::sha256_hex(&lock)[..12];
    install(&format!("js-{digest}"), |dir| {
        std::fs::write(dir.join("package.json"), &manifest)?;
        std::fs::write(dir.join("package-lock.json"), &lock)?;
        // No package of the lockfile needs its install scripts (esbuild's binary comes as an optional package).
        let mut npm = Command::new("npm");
        npm.args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(dir);
        run(npm, "npm (Node.js 20 or newer, from your system's packages or nodejs.org)")
    })
}

/// The JavaScript build script (`sdk/js/toolchain/build.mjs`) in the installed toolchain, where it
/// finds the tools: written on every build, so that a newer `kith` brings its script without reinstalling.
pub fn js_build_script() -> Result<PathBuf> {
    let tools = js()?;
    let script = match assets::source() {
        Some(root) => std::fs::read(root.join("sdk/js/toolchain/build.mjs")).context("reading sdk/js/toolchain/build.mjs")?,
        None => assets::JS_TOOLCHAIN.get_file("build.mjs").context("this kith carries no JavaScript build script")?.contents().to_vec(),
    };
    // Named by its content: kiths with the same tools and another script do not overwrite each other's.
    let path = tools.join(format!("build-{}.mjs", &kith_host::sha256_hex(&script)[..12]));
    if std::fs::read(&path).ok().as_deref() != Some(&script[..]) {
        // Written aside and renamed: a build running at the same time never reads half a script.
        let partial = tools.join(format!(".build.mjs.{}", std::process::id()));
        std::fs::write(&partial, &script)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(path)
}

/// The Python of a virtual environment holding the pinned componentize-py.
pub fn python() -> Result<PathBuf> {
    let dir = install(&format!("componentize-py-{COMPONENTIZE_PY}"), |dir| {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let mut venv = Command::new(&python);
        venv.args(["-m", "venv"]).arg(dir.join("venv"));
        run(venv, "python3 (3.10 or newer, with its venv module)")?;
        let mut pip = Command::new(dir.join("venv/bin/python3"));
        pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", &format!("componentize-py=={COMPONENTIZE_PY}")]);
        run(pip, "pip")
    })?;
    Ok(dir.join("venv/bin/python3"))
}

/// `$KITH_CACHE/toolchains/<name>`, installed by `fill` into a fresh folder that is renamed into
/// place once complete: an interrupted install leaves nothing half-made. Builds installing at once
/// take turns on a lock file (released when a process ends, however it ends): the first installs,
/// the others find it installed.
fn install(name: &str, fill: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let root = super::cache_root().join("toolchains");
    let dir = root.join(name);
    if dir.join(".installed").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let lock = std::fs::File::create(root.join(format!(".{name}.lock")))?;
    lock.lock().with_context(|| format!("waiting for another install of the {name} toolchain"))?;
    if dir.join(".installed").is_file() {
        return Ok(dir);
    }
    let partial = root.join(format!(".{name}.{}", std::process::id()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    std::fs::create_dir_all(&partial)?;
    eprintln!("installing the {name} toolchain into {} (once)", dir.display());
    if let Err(err) = fill(&partial) {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(err.context(format!("installing the {name} toolchain")));
    }
    std::fs::write(partial.join(".installed"), format!("kith {}\n", env!("CARGO_PKG_VERSION")))?;
    if let Err(err) = std::fs::rename(&partial, &dir) {
        // Another build finished first: keep its copy.
        let _ = std::fs::remove_dir_all(&partial);
        if !dir.join(".installed").is_file() {
            return Err(err).with_context(|| format!("moving the toolchain into {}", dir.display()));
        }
    }
    Ok(dir)
}

/// Run a command to completion; a missing program is named with what provides it.
pub fn run(mut command: Command, provides: &str) -> Result<()> {
    let shown = format!("{command:?}");
    let status = match command.status() {
        Ok(status) => status,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!("{shown}: not found; it needs {provides}"),
        Err(err) => return Err(err).with_context(|| format!("starting {shown}")),
    };
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}
