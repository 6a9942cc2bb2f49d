//! C plugins: `wit-bindgen c` bindings of the kind's world, compiled with Debian's clang and
//! wasi-libc into a WASI preview 1 reactor module, made a component with the preview 1 adapter.
//!
//! Everything but the compiler is inside this binary: the bindings generator (`wit-bindgen-c`),
//! the encoder (`wit-component`) and the adapter (`wasi-preview1-component-adapter-provider`),
//! pinned in its Cargo.toml. The compiler is Debian's `clang-14` with `lld-14`, `wasi-libc` and
//! `libclang-rt-14-dev-wasm32` (or any clang whose resource folder has the wasm32 builtins, given
//! as `KITH_CLANG`, with a WASI sysroot given as `KITH_WASI_SYSROOT`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::Project;

/// The name the bindings give every kind's world: `plugin.h`, `plugin_string_t`,
/// `exports_plugin_evaluate`, so that the SDK and the templates read the same in every kind.
pub const WORLD_NAME: &str = "plugin";

/// The Debian packages that make a C plugin build, named in the errors when one is missing.
pub const DEBIAN_PACKAGES: &str = "clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32";

/// The flags of every compile: wasm32-wasi, optimised, a reactor (no `main`; the exports are the entry points).
const CFLAGS: [&str; 6] = ["--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "-std=c11", "-Wall", "-Wextra"];

/// Where a build writes the bindings and the core module: `target/kith/c/`.
pub fn out_dir(project: &Project) -> PathBuf {
    project.out_dir().join("c")
}

/// Build the project's component into `wasm`.
pub fn build(project: &Project, wasm: &Path) -> Result<()> {
    let toolchain = Toolchain::find()?;
    let out = out_dir(project);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let bindings = bindings(&project.dir.join(".kith/wit/v0.2"), project.manifest.kind.as_str(), &out)?;
    let mut sources = sources(&project.dir.join("src"))?;
    if sources.is_empty() {
        bail!("{}: no .c files in src/", project.dir.display());
    }
    let sdk = project.dir.join(".kith/sdk/c");
    sources.extend(self::sources(&sdk)?);
    sources.push(bindings.source);
    let kind = project.manifest.kind.as_str();
    let module = out.join("plugin.core.wasm");
    let mut clang = toolchain.command();
    clang
        .args(CFLAGS)
        // The kind, for the SDK and the project's sources: KITH_WORLD_TAG_RULE, …
        .arg(format!("-DKITH_WORLD_{}", kind.to_uppercase().replace('-', "_")))
        // The bindings and the SDK before the project's own headers: a vendor's `src/plugin.h`
        // must not stand in for the generated one that `kith.h` includes.
        .arg("-I")
        .arg(&out)
        .arg("-I")
        .arg(&sdk)
        .arg("-I")
        .arg(project.dir.join("src"))
        // Paths inside the module (assertion messages) as the project names them, wherever it is.
        .arg(format!("-ffile-prefix-map={}=.", project.dir.display()))
        .args(&sources)
        .arg(&bindings.component_type)
        .arg("-o")
        .arg(&module)
        .current_dir(&project.dir);
    let status = clang.status().with_context(|| format!("starting {}", toolchain.clang.display()))?;
    if !status.success() {
        bail!("{} could not compile the plugin ({status}): see its messages above", toolchain.clang.display());
    }
    let core = std::fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
    let component = componentize(&core)?;
    std::fs::write(wasm, component).with_context(|| format!("writing {}", wasm.display()))
}

/// The `.c` files in `dir` and below it, sorted (the same module from the same sources).
pub(super) fn sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(found) };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(sources(&path)?);
        } else if path.extension().is_some_and(|e| e == "c") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// What [`bindings`] wrote.
pub struct Bindings {
    /// `plugin.c`: the glue between the component model's ABI and the C types.
    pub source: PathBuf,
    /// `plugin_component_type.o`: the world's type, linked into the module for the encoder.
    pub component_type: PathBuf,
}

/// `wit-bindgen c --world KIND --rename-world plugin --features clocks-timezone` of the WIT in `wit`, into `out`.
pub fn bindings(wit: &Path, world: &str, out: &Path) -> Result<Bindings> {
    let mut resolve = wit_parser::Resolve::default();
    resolve.features.insert("clocks-timezone".into());
    let (package, _) = resolve.push_dir(wit).with_context(|| format!("reading the WIT in {}", wit.display()))?;
    let world = resolve.select_world(&[package], Some(world))?;
    let opts = wit_bindgen_c::Opts { rename_world: Some(WORLD_NAME.into()), ..Default::default() };
    let mut files = wit_bindgen_core::Files::default();
    opts.build().generate(&resolve, world, &mut files).context("generating the C bindings")?;
    for (name, bytes) in files.iter() {
        write_if_changed(&out.join(name), bytes)?;
    }
    let bindings =
        Bindings { source: out.join(format!("{WORLD_NAME}.c")), component_type: out.join(format!("{WORLD_NAME}_component_type.o")) };
    for path in [&bindings.source, &bindings.component_type] {
        if !path.is_file() {
            bail!("wit-bindgen wrote no {}", path.display());
        }
    }
    Ok(bindings)
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// The core module made a component: its `wasi_snapshot_preview1` imports through the reactor adapter.
pub fn componentize(core: &[u8]) -> Result<Vec<u8>> {
    use wasi_preview1_component_adapter_provider::{WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER};
    wit_component::ComponentEncoder::default()
        .module(core)
        .context("reading the module clang built (it lacks the component type: was plugin_component_type.o linked?)")?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)?
        .validate(true)
        .encode()
        .context("making the module a component")
}

/// clang and the WASI sysroot it compiles against.
pub struct Toolchain {
    clang: PathBuf,
    sysroot: Sysroot,
}

enum Sysroot {
    /// Debian's wasi-libc: headers in /usr/include/wasm32-wasi, libraries in /usr/lib/wasm32-wasi.
    Debian,
    /// A wasi-sdk style sysroot (`include/`, `lib/wasm32-wasi/`), from `KITH_WASI_SYSROOT`.
    Given(PathBuf),
}

impl Toolchain {
    /// `KITH_CLANG`, else Debian's clang 14 (`/usr/lib/llvm-14/bin/clang`, `clang-14`), else `clang`;
    /// checked to have what a wasm32-wasi build needs, each missing part named with its Debian package.
    pub fn find() -> Result<Toolchain> {
        Toolchain::with(std::env::var_os("KITH_CLANG").map(PathBuf::from), std::env::var_os("KITH_WASI_SYSROOT").map(PathBuf::from))
    }

    /// The toolchain of `clang` (else the first found) and `sysroot` (else Debian's), checked.
    fn with(clang: Option<PathBuf>, sysroot: Option<PathBuf>) -> Result<Toolchain> {
        let clang = match clang {
            Some(clang) if runs(&clang) => clang,
            Some(clang) => bail!("{} (KITH_CLANG) does not run: it should name a clang that targets wasm32-wasi", clang.display()),
            None => {
                let candidates = [PathBuf::from("/usr/lib/llvm-14/bin/clang"), PathBuf::from("clang-14"), PathBuf::from("clang")];
                candidates.into_iter().find(|c| runs(c)).with_context(|| {
                    format!("C plugins are compiled with clang for wasm32-wasi, and none was found: on Debian or Ubuntu, `apt-get install {DEBIAN_PACKAGES}`")
                })?
            }
        };
        let sysroot = match sysroot {
            Some(dir) => Sysroot::Given(dir),
            None => Sysroot::Debian,
        };
        let toolchain = Toolchain { clang, sysroot };
        toolchain.check()?;
        Ok(toolchain)
    }

    fn check(&self) -> Result<()> {
        let libc = match &self.sysroot {
            Sysroot::Debian => PathBuf::from("/usr/lib/wasm32-wasi/libc.a"),
            Sysroot::Given(dir) => dir.join("lib/wasm32-wasi/libc.a"),
        };
        if !libc.is_file() {
            bail!("{} is missing: C plugins need the WASI C library (Debian: `apt-get install wasi-libc`)", libc.display());
        }
        let resource = Command::new(&self.clang).arg("-print-resource-dir").output().context("asking clang for its resource folder")?;
        let builtins = PathBuf::from(String::from_utf8_lossy(&resource.stdout).trim()).join("lib/wasi/libclang_rt.builtins-wasm32.a");
        // Debian names the builtins and lld by clang's major version.
        let version = Command::new(&self.clang).arg("-dumpversion").output().ok();
        let major = version
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().split('.').next().unwrap_or_default().to_string())
            .filter(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or_else(|| "14".into());
        if !builtins.is_file() {
            bail!(
                "{} is missing: {} needs the compiler builtins for wasm32 (Debian: `apt-get install libclang-rt-{major}-dev-wasm32`)",
                builtins.display(),
                self.clang.display()
            );
        }
        if self.linker().is_none() {
            bail!("wasm-ld is missing: {} links wasm32 with lld (Debian: `apt-get install lld-{major}`)", self.clang.display());
        }
        Ok(())
    }

    /// The folder holding `wasm-ld`: clang's own (Debian's clang finds lld there), else the path's.
    fn linker(&self) -> Option<PathBuf> {
        let own = std::fs::canonicalize(self.resolved()).ok().and_then(|c| c.parent().map(Path::to_path_buf));
        if let Some(dir) = own.filter(|d| d.join("wasm-ld").is_file()) {
            return Some(dir);
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).find(|d| d.join("wasm-ld").is_file())
    }

    /// The clang binary, looked up on the path when named bare.
    fn resolved(&self) -> PathBuf {
        if self.clang.components().count() > 1 {
            return self.clang.clone();
        }
        std::env::var_os("PATH")
            .and_then(|path| std::env::split_paths(&path).map(|d| d.join(&self.clang)).find(|c| c.is_file()))
            .unwrap_or_else(|| self.clang.clone())
    }

    /// clang with the sysroot's flags, `wasm-ld` first on its path.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.clang);
        match &self.sysroot {
            Sysroot::Debian => {
                // Only wasi-libc's headers and clang's own: never the host's in /usr/include or
                // /usr/local/include, which would compile and then fail to link, or worse.
                command.args(["--sysroot=/usr", "-nostdlibinc", "-isystem", "/usr/include/wasm32-wasi", "-L/usr/lib/wasm32-wasi"]);
            }
            Sysroot::Given(dir) => {
                command.arg(format!("--sysroot={}", dir.display()));
            }
        }
        if let Some(dir) = self.linker() {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let joined = std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&path)));
            if let Ok(joined) = joined {
                command.env("PATH", joined);
            }
        }
        command
    }
}

fn runs(program: &Path) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn every_kind_has_bindings_of_its_world_renamed_plugin() {
        let dir = tempfile::tempdir().unwrap();
        for (kind, export) in [
            ("tag-rule", "exports_plugin_evaluate"),
            ("scoring-model", "exports_plugin_score"),
            ("loyalty-scheme", "exports_plugin_review"),
            ("channel-connector", "exports_plugin_parse_receipt"),
        ] {
            let out = dir.path().join(kind);
            std::fs::create_dir_all(&out).unwrap();
            let bindings = bindings(&repository().join("wit/v0.2"), kind, &out).unwrap();
            let header = std::fs::read_to_string(out.join("plugin.h")).unwrap();
            assert!(header.contains(&format!("bool {export}(")), "{kind}");
            assert!(header.contains("typedef struct plugin_string_t"), "{kind}");
            assert_eq!(header.contains("wasi_http_outgoing_handler_handle"), kind == "channel-connector", "{kind}");
            assert!(bindings.source.is_file() && bindings.component_type.is_file());
        }
    }

    /// sdk/c/tests/kith_test.c, compiled natively with the host's C compiler against the tag
    /// rule's bindings, its imports faked.
    #[test]
    fn the_c_sdk_passes_its_native_tests() {
        let dir = tempfile::tempdir().unwrap();
        bindings(&repository().join("wit/v0.2"), "tag-rule", dir.path()).unwrap();
        let sdk = repository().join("sdk/c");
        let binary = dir.path().join("kith_test");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let compiled = Command::new(&cc)
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-DKITH_WORLD_TAG_RULE", "-I"])
            .arg(sdk.join("src"))
            .arg("-I")
            .arg(dir.path())
            .arg(sdk.join("src/kith.c"))
            .arg(sdk.join("src/kith_http.c"))
            .arg(sdk.join("tests/kith_test.c"))
            .arg("-o")
            .arg(&binary)
            .output()
            .unwrap_or_else(|e| panic!("{cc}: {e}"));
        assert!(compiled.status.success(), "{}", String::from_utf8_lossy(&compiled.stderr));
        let ran = Command::new(&binary).output().unwrap();
        let report = format!("{}{}", String::from_utf8_lossy(&ran.stdout), String::from_utf8_lossy(&ran.stderr));
        assert!(ran.status.success() && report.contains(" 0 failed"), "{report}");
    }

    #[test]
    fn a_missing_part_of_the_toolchain_is_named() {
        let err = Toolchain::with(Some("/nonexistent/clang".into()), None).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/clang (KITH_CLANG) does not run"), "{err}");
        // A sysroot without wasi-libc: named with the Debian package (the clang is whichever is installed).
        let empty = tempfile::tempdir().unwrap();
        if let Ok(clang) = Toolchain::with(None, None).map(|t| t.clang) {
            let err = Toolchain::with(Some(clang), Some(empty.path().into())).err().unwrap().to_string();
            assert!(err.contains("lib/wasm32-wasi/libc.a is missing") && err.contains("apt-get install wasi-libc"), "{err}");
        }
    }

    #[test]
    fn a_project_with_c_sources_is_c() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!super::super::has_c_sources(&dir.path().join("src")));
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/plugin.h"), "").unwrap();
        assert!(!super::super::has_c_sources(&dir.path().join("src")));
        std::fs::write(dir.path().join("src/plugin.c"), "").unwrap();
        assert!(super::super::has_c_sources(&dir.path().join("src")));
        std::fs::create_dir_all(dir.path().join("src/more")).unwrap();
        std::fs::write(dir.path().join("src/more/b.c"), "").unwrap();
        let found = sources(&dir.path().join("src")).unwrap();
        assert_eq!(found, [dir.path().join("src/more/b.c"), dir.path().join("src/plugin.c")]);
        // Sources only in a folder below src/ make a C project too.
        std::fs::remove_file(dir.path().join("src/plugin.c")).unwrap();
        assert!(super::super::has_c_sources(&dir.path().join("src")));
    }
}
