//! `cargo xtask wit-types`: the JavaScript SDK's TypeScript types of the WIT's `types` interface
//! (`sdk/js/src/wit.d.ts`), generated from `wit/v0.2/types.wit` with wit-parser, so that no type
//! mirroring the WIT is written by hand. The SDK's own additions (a message's `vars`, an inbound
//! request's `text()`, `ErrorKind`) are in the hand-written `sdk/js/src/types.d.ts`, which
//! re-exports this file.
//!
//! The types are the values as the componentize-qjs runtime hands them over and the SDK passes
//! them on (`sdk/js/src/convert.js`): records are objects with camelCase fields, `s64`/`u64` are
//! numbers, an absent `option` is null (the SDK turns the runtime's `undefined` into null),
//! `list<u8>` is a Uint8Array, tuples are arrays, variants are `{ tag, val }` with the case's WIT
//! name as `tag`, enums are their case names, flags are objects of booleans and results are
//! `{ tag: 'ok' | 'err', val }`. What the generator cannot say for sure (resources, futures,
//! streams, `option<option<T>>`) it refuses, naming the type.
//!
//! A unit test checks that the committed file is what the generator makes; `cargo xtask test`
//! runs it through `cargo test --workspace`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use wit_parser::{Docs, InterfaceId, Resolve, Stability, Type, TypeDefKind, TypeId, TypeOwner};

/// The WIT package the SDK builds against, relative to the repository's root.
pub const WIT_DIR: &str = "wit/v0.2";
/// The interface whose types are generated, and the file it is in.
const INTERFACE: &str = "types";
const INTERFACE_FILE: &str = "wit/v0.2/types.wit";
/// The generated file, relative to the repository's root.
pub const OUT: &str = "sdk/js/src/wit.d.ts";
/// What to run when the committed file is stale.
pub const COMMAND: &str = "cargo xtask wit-types";

/// WIT names whose PascalCase form would shadow a JavaScript global, and the SDK's name for them
/// (what `sdk/js/src/*.d.ts` has always exported).
const RENAMED: &[(&str, &str)] = &[("error", "WitError")];
/// Globals a generated name must not shadow unless [`RENAMED`] gives it another name.
const GLOBALS: &[&str] = &[
    "Array",
    "BigInt",
    "Boolean",
    "Date",
    "Error",
    "Function",
    "Map",
    "Number",
    "Object",
    "Promise",
    "Record",
    "Set",
    "String",
    "Symbol",
    "Uint8Array",
];

/// `cargo xtask wit-types`: (re)write [`OUT`] from [`WIT_DIR`] under `root`; with `--check`, only
/// say whether it is current.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    match args {
        [] => {
            let out = root.join(OUT);
            let text = generate(&root.join(WIT_DIR))?;
            if std::fs::read_to_string(&out).is_ok_and(|old| old == text) {
                eprintln!("xtask: {OUT} is current");
            } else {
                std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
                eprintln!("xtask: wrote {OUT} from {INTERFACE_FILE}");
            }
            Ok(())
        }
        [flag] if flag == "--check" => check(&root.join(WIT_DIR), &root.join(OUT)),
        _ => bail!("usage: {COMMAND} [--check]"),
    }
}

/// Fails, naming [`COMMAND`], when `out` is not what the WIT in `wit_dir` generates.
pub fn check(wit_dir: &Path, out: &Path) -> Result<()> {
    let want = generate(wit_dir)?;
    let have = std::fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
    if have == want {
        return Ok(());
    }
    let (line, (had, wanted)) = have
        .lines()
        .chain(std::iter::repeat("<end of file>"))
        .zip(want.lines().chain(std::iter::repeat("<end of file>")))
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .unwrap_or((0, ("", "")));
    bail!(
        "{OUT} is not what {INTERFACE_FILE} generates: run `{COMMAND}` and commit the result \
         (first difference at line {}: the file has {had:?}, the WIT gives {wanted:?})",
        line + 1
    )
}

/// The TypeScript of the `types` interface of the package in `wit_dir` (with its `deps/`).
pub fn generate(wit_dir: &Path) -> Result<String> {
    let mut resolve = Resolve::default();
    // As in the Rust SDK's bindings: wit-parser 0.239 cannot resolve the WASI deps' import of
    // `wasi:clocks/timezone` (`@unstable`) with its feature off.
    resolve.features.insert("clocks-timezone".to_owned());
    let (package, _) = resolve.push_dir(wit_dir).with_context(|| format!("reading the WIT package in {}", wit_dir.display()))?;
    let pkg = &resolve.packages[package];
    let interface = *pkg.interfaces.get(INTERFACE).with_context(|| format!("{} has no interface `{INTERFACE}`", pkg.name))?;
    let iface = &resolve.interfaces[interface];
    let generator = Generator { resolve: &resolve, interface, package: format!("{}:{}", pkg.name.namespace, pkg.name.name) };

    let mut out = String::new();
    let _ = writeln!(out, "// {}, interface `{INTERFACE}`, as TypeScript.", pkg.name);
    out.push_str("//\n");
    let _ = writeln!(out, "// Generated by `{COMMAND}` from {INTERFACE_FILE}; do not edit.");
    out.push_str("//\n");
    for line in doc_lines(&iface.docs) {
        out.push_str(format!("// {line}").trim_end());
        out.push('\n');
    }
    out.push_str(HEADER);
    for (name, &id) in &iface.types {
        out.push('\n');
        generator.declaration(&mut out, name, id).with_context(|| format!("type `{name}` of {}/{INTERFACE}", pkg.name))?;
    }
    Ok(out)
}

/// What the header says about the representation, after the interface's own documentation.
const HEADER: &str = "//
// The values as the componentize-qjs runtime hands them over and the SDK passes them on:
// records are objects with camelCase fields; `s64`/`u64` (ids, money, points, milliseconds) are
// numbers, exact up to 2^53; an absent `option` is null; `list<u8>` is a Uint8Array; tuples are
// arrays; variants are `{ tag, val }` with the case's WIT name as `tag`; enums are their case
// names; flags are objects of booleans; results are `{ tag: 'ok' | 'err', val }`. What the SDK
// adds (a message's `vars`, an inbound request's `text()`, `json()` and `header()`, `ErrorKind`)
// is in types.d.ts, which re-exports these.
";

struct Generator<'a> {
    resolve: &'a Resolve,
    /// The `types` interface: types elsewhere are not generated.
    interface: InterfaceId,
    /// `kith:plugin`, for `@since`.
    package: String,
}

impl Generator<'_> {
    /// `export interface …` or `export type … = …;` for the named type `id`, with its docs.
    fn declaration(&self, out: &mut String, wit_name: &str, id: TypeId) -> Result<()> {
        let def = &self.resolve.types[id];
        let name = type_name(wit_name)?;
        out.push_str(&jsdoc(&def.docs, &def.stability, &self.package, ""));
        match &def.kind {
            TypeDefKind::Record(record) => {
                let _ = writeln!(out, "export interface {name} {{");
                for field in &record.fields {
                    out.push_str(&jsdoc(&field.docs, &Stability::Unknown, "", "  "));
                    let _ = writeln!(out, "  {}: {};", camel(&field.name), self.ty(&field.ty)?);
                }
                out.push_str("}\n");
            }
            TypeDefKind::Flags(flags) => {
                // The runtime takes a missing flag as unset.
                let _ = writeln!(out, "export interface {name} {{");
                for flag in &flags.flags {
                    out.push_str(&jsdoc(&flag.docs, &Stability::Unknown, "", "  "));
                    let _ = writeln!(out, "  {}?: boolean;", camel(&flag.name));
                }
                out.push_str("}\n");
            }
            TypeDefKind::Variant(variant) => {
                let mut cases = Vec::new();
                for case in &variant.cases {
                    let val = match &case.ty {
                        Some(ty) => format!("; val: {}", self.ty(ty)?),
                        None => String::new(),
                    };
                    cases.push((&case.docs, format!("{{ tag: '{}'{val} }}", case.name)));
                }
                union(out, &name, &cases);
            }
            TypeDefKind::Enum(e) => {
                let cases: Vec<_> = e.cases.iter().map(|case| (&case.docs, format!("'{}'", case.name))).collect();
                union(out, &name, &cases);
            }
            _ => {
                let _ = writeln!(out, "export type {name} = {};", self.kind(&def.kind)?);
            }
        }
        Ok(())
    }

    /// A type where it is used: a named type by its name, an anonymous one spelled out.
    fn ty(&self, ty: &Type) -> Result<String> {
        Ok(match ty {
            Type::Bool => "boolean".into(),
            Type::U8 | Type::U16 | Type::U32 | Type::U64 | Type::S8 | Type::S16 | Type::S32 | Type::S64 | Type::F32 | Type::F64 => {
                "number".into()
            }
            Type::Char | Type::String => "string".into(),
            Type::ErrorContext => bail!("`error-context` has no representation in the SDK"),
            Type::Id(id) => {
                let def = &self.resolve.types[*id];
                match &def.name {
                    Some(name) => {
                        if def.owner != TypeOwner::Interface(self.interface) {
                            bail!("`{name}` is not a type of the `{INTERFACE}` interface; only that interface is generated");
                        }
                        type_name(name)?
                    }
                    None => self.kind(&def.kind)?,
                }
            }
        })
    }

    /// An anonymous type (or the right-hand side of an alias).
    fn kind(&self, kind: &TypeDefKind) -> Result<String> {
        Ok(match kind {
            TypeDefKind::Type(ty) => self.ty(ty)?,
            TypeDefKind::Option(ty) => {
                if self.is_option(ty) {
                    bail!("option<option<…>>: the runtime's representation of a nested option is not settled here");
                }
                format!("{} | null", self.ty(ty)?)
            }
            TypeDefKind::List(ty) if self.is_u8(ty) => "Uint8Array".into(),
            TypeDefKind::List(ty) => {
                let item = self.ty(ty)?;
                if item.contains('|') { format!("({item})[]") } else { format!("{item}[]") }
            }
            TypeDefKind::Tuple(tuple) => {
                let items = tuple.types.iter().map(|ty| self.ty(ty)).collect::<Result<Vec<_>>>()?;
                format!("[{}]", items.join(", "))
            }
            TypeDefKind::Result(result) => {
                let side = |tag: &str, ty: &Option<Type>| -> Result<String> {
                    Ok(match ty {
                        Some(ty) => format!("{{ tag: '{tag}'; val: {} }}", self.ty(ty)?),
                        None => format!("{{ tag: '{tag}' }}"),
                    })
                };
                format!("{} | {}", side("ok", &result.ok)?, side("err", &result.err)?)
            }
            TypeDefKind::Record(_) | TypeDefKind::Flags(_) | TypeDefKind::Variant(_) | TypeDefKind::Enum(_) => {
                bail!("an anonymous {}", kind.as_str())
            }
            TypeDefKind::Resource
            | TypeDefKind::Handle(_)
            | TypeDefKind::Future(_)
            | TypeDefKind::Stream(_)
            | TypeDefKind::FixedSizeList(..)
            | TypeDefKind::Unknown => {
                bail!("a {} has no representation in the SDK", kind.as_str())
            }
        })
    }

    /// `ty` through its aliases.
    fn resolved<'b>(&'b self, ty: &'b Type) -> &'b Type {
        match ty {
            Type::Id(id) => match &self.resolve.types[*id].kind {
                TypeDefKind::Type(inner) => self.resolved(inner),
                _ => ty,
            },
            _ => ty,
        }
    }

    fn is_u8(&self, ty: &Type) -> bool {
        matches!(self.resolved(ty), Type::U8)
    }

    fn is_option(&self, ty: &Type) -> bool {
        matches!(self.resolved(ty), Type::Id(id) if matches!(self.resolve.types[*id].kind, TypeDefKind::Option(_)))
    }
}

/// `export type NAME = A | B;`, one case a line (with its docs) when any case has docs.
fn union(out: &mut String, name: &str, cases: &[(&Docs, String)]) {
    if cases.iter().all(|(docs, _)| docs.contents.is_none()) {
        let all: Vec<&str> = cases.iter().map(|(_, case)| case.as_str()).collect();
        let line = format!("export type {name} = {};", all.join(" | "));
        if line.len() <= 100 {
            out.push_str(&line);
            out.push('\n');
            return;
        }
    }
    let _ = writeln!(out, "export type {name} =");
    let last = cases.len().saturating_sub(1);
    for (i, (docs, case)) in cases.iter().enumerate() {
        out.push_str(&jsdoc(docs, &Stability::Unknown, "", "  "));
        let _ = writeln!(out, "  | {case}{}", if i == last { ";" } else { "" });
    }
}

/// The lines of a doc comment, trailing blank lines left out.
fn doc_lines(docs: &Docs) -> Vec<String> {
    let mut lines: Vec<String> = docs.contents.as_deref().unwrap_or("").lines().map(|l| l.trim_end().replace("*/", "*\\/")).collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// `/** … */` for WIT docs (and `@since`/`@deprecated` from its stability), or nothing.
fn jsdoc(docs: &Docs, stability: &Stability, package: &str, indent: &str) -> String {
    let mut lines = doc_lines(docs);
    let mut tags = Vec::new();
    match stability {
        Stability::Unknown => {}
        Stability::Stable { since, deprecated } => {
            tags.push(format!("@since {package}@{since}"));
            if let Some(version) = deprecated {
                tags.push(format!("@deprecated since {package}@{version}"));
            }
        }
        Stability::Unstable { feature, deprecated } => {
            tags.push(format!("@experimental behind the WIT feature `{feature}`"));
            if let Some(version) = deprecated {
                tags.push(format!("@deprecated since {package}@{version}"));
            }
        }
    }
    if !tags.is_empty() && !lines.is_empty() {
        lines.push(String::new());
    }
    lines.extend(tags);
    match lines.as_slice() {
        [] => String::new(),
        [line] => format!("{indent}/** {line} */\n"),
        lines => {
            let mut out = format!("{indent}/**\n");
            for line in lines {
                if line.is_empty() {
                    let _ = writeln!(out, "{indent} *");
                } else {
                    let _ = writeln!(out, "{indent} * {line}");
                }
            }
            let _ = writeln!(out, "{indent} */");
            out
        }
    }
}

/// A WIT name (`shop-context`) as a TypeScript type name (`ShopContext`).
fn type_name(wit: &str) -> Result<String> {
    if let Some((_, name)) = RENAMED.iter().find(|(from, _)| *from == wit) {
        return Ok((*name).to_owned());
    }
    let name: String = wit.split('-').map(capitalised).collect();
    if GLOBALS.contains(&name.as_str()) {
        bail!("`{wit}` would be `{name}`, which shadows a JavaScript global: give it a name in RENAMED");
    }
    Ok(name)
}

/// A WIT name (`total-spent`) as the runtime's field name (`totalSpent`).
fn camel(wit: &str) -> String {
    let mut parts = wit.split('-');
    let first = parts.next().unwrap_or_default().to_lowercase();
    first + &parts.map(capitalised).collect::<String>()
}

/// `word` (all lower or all upper case in WIT) with its first letter in upper case, the rest lower.
fn capitalised(word: &str) -> String {
    let lower = word.to_lowercase();
    let mut chars = lower.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The repository's root.
    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
    }

    /// The committed file is what the WIT generates.
    #[test]
    fn committed_types_are_current() {
        if let Err(e) = check(&root().join(WIT_DIR), &root().join(OUT)) {
            panic!("{e:#}");
        }
    }

    /// A doc comment edited in (a copy of) the WIT makes the committed file stale, and the
    /// failure names the command that brings it up to date.
    #[test]
    fn an_edited_doc_comment_is_caught() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        copy_dir(&root().join(WIT_DIR), dir.path()).expect("copying the WIT");
        let types = dir.path().join("types.wit");
        let wit = std::fs::read_to_string(&types).expect("types.wit");
        let edited = wit.replacen("/// Points balance", "/// The points balance", 1);
        assert_ne!(edited, wit, "the doc comment this test edits is gone from types.wit");
        std::fs::write(&types, edited).expect("writing the copy");
        let err = check(dir.path(), &root().join(OUT)).expect_err("a stale file must fail the check");
        let message = format!("{err:#}");
        assert!(message.contains(COMMAND), "{message}");
        assert!(message.contains("The points balance"), "{message}");
    }

    /// Today's public names (`sdk/js/src/*.d.ts`, templates and plugins use them) are generated.
    #[test]
    fn public_names_are_kept() {
        let text = generate(&root().join(WIT_DIR)).expect("generating");
        for name in [
            "type Timestamp = number",
            "type Money = number",
            "type WitError =",
            "interface Profile",
            "interface Stats",
            "interface Customer",
            "interface Subject",
            "interface ShopContext",
            "type Decision =",
            "interface Message",
            "type Delivery =",
            "interface InboundRequest",
            "type ReceiptStatus = 'delivered' | 'failed' | 'pending';",
            "interface Receipt",
            "interface BuyerSummary",
            "  totalSpent: Money;",
            "  body: Uint8Array;",
            "  variables: [string, string][];",
            "  expiresAt: Timestamp | null;",
            "  | { tag: 'retry-after'; val: number };",
        ] {
            assert!(text.contains(name), "`{name}` is missing from the generated types");
        }
    }

    /// What types.wit does not have yet: flags, results, tuples, lists of options, aliases of
    /// bytes; and what the generator refuses.
    #[test]
    fn other_kinds() {
        let wit = |body: &str| -> Result<String> {
            let dir = tempfile::tempdir()?;
            std::fs::write(dir.path().join("x.wit"), format!("package test:x@1.0.0;\ninterface types {{\n{body}\n}}\n"))?;
            generate(dir.path())
        };
        let text = wit("/// Who may.\nflags access { read, /** Changes. */ write-all }\n\
             type bytes = list<u8>;\n\
             record r { a: result<u32, string>, b: result, c: list<option<s8>>, d: tuple<bool, char>, e: bytes }\n\
             variant v { none, some(r) }")
        .expect("generating");
        for line in [
            "/** Who may. */\nexport interface Access {\n  read?: boolean;\n  /** Changes. */\n  writeAll?: boolean;\n}\n",
            "export type Bytes = Uint8Array;\n",
            "  a: { tag: 'ok'; val: number } | { tag: 'err'; val: string };\n",
            "  b: { tag: 'ok' } | { tag: 'err' };\n",
            "  c: (number | null)[];\n",
            "  d: [boolean, string];\n",
            "  e: Bytes;\n",
            "export type V = { tag: 'none' } | { tag: 'some'; val: R };\n",
        ] {
            assert!(text.contains(line), "`{line}` is missing from:\n{text}");
        }
        for (body, refused) in [
            ("record r { a: option<option<u32>> }", "option<option"),
            ("resource h;", "resource"),
            ("record r { a: future<u32> }", "future"),
            ("record error { a: u32 }\nrecord %record { a: u32 }", "shadows a JavaScript global"),
        ] {
            let err = format!("{:#}", wit(body).expect_err(body));
            assert!(err.contains(refused), "{body}: {err}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(type_name("shop-context").unwrap(), "ShopContext");
        assert_eq!(type_name("error").unwrap(), "WitError");
        assert!(type_name("record").is_err());
        assert_eq!(camel("average-order-value"), "averageOrderValue");
        assert_eq!(camel("HTTP-request"), "httpRequest");
    }

    fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let target = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                copy_dir(&entry.path(), &target)?;
            } else {
                std::fs::copy(entry.path(), target)?;
            }
        }
        Ok(())
    }
}
