//! Released WIT is frozen: every file listed in `wit/RELEASED` still has its
//! hash, and a released version folder holds no file that is not listed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit")
}

fn wit_files(dir: &Path, into: &mut BTreeSet<String>, root: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            wit_files(&path, into, root);
        } else if path.extension().is_some_and(|e| e == "wit") {
            into.insert(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

#[test]
fn released_wit_files_are_unchanged() {
    let root = wit_dir();
    let released = std::fs::read_to_string(root.join("RELEASED")).unwrap();
    let mut listed = BTreeSet::new();
    let mut versions = BTreeSet::new();
    let mut changed = Vec::new();
    for line in released.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (hash, file) = line.split_once("  ").expect("`<sha256>  <path>` lines");
        let actual = hex::encode(Sha256::digest(std::fs::read(root.join(file)).unwrap_or_default()));
        if actual != hash {
            changed.push(file.to_owned());
        }
        versions.insert(file.split('/').next().unwrap().to_owned());
        listed.insert(file.to_owned());
    }
    assert!(
        changed.is_empty(),
        "released WIT changed: {changed:?}. A released package is frozen; add the change as a new version (see ARCHITECTURE.md, \"Versions of the WIT\")"
    );
    let mut present = BTreeSet::new();
    for version in &versions {
        wit_files(&root.join(version), &mut present, &root);
    }
    let added: Vec<_> = present.difference(&listed).collect();
    assert!(added.is_empty(), "files added to a released WIT version: {added:?}");
    assert!(versions.contains("v0.1"), "kith:plugin@0.1.0 is released");
    assert!(versions.contains("v0.2"), "kith:plugin@0.2.0 is released: the SDKs build against it");
}

#[test]
fn every_wit_version_is_served_and_says_its_version() {
    let root = wit_dir();
    let mut folders: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('v') && root.join(name).is_dir())
        .collect();
    folders.sort();
    assert_eq!(folders, ["v0.1", "v0.2"]);
    let mut versions = Vec::new();
    for folder in &folders {
        let version = format!("{}.0", folder.trim_start_matches('v'));
        for file in ["types.wit", "host.wit", "worlds.wit"] {
            let text = std::fs::read_to_string(root.join(folder).join(file)).unwrap();
            assert!(text.starts_with(&format!("package kith:plugin@{version};")), "{folder}/{file} declares kith:plugin@{version}");
        }
        versions.push(version);
    }
    assert_eq!(versions, kith_domain::plugin::SERVED_API_VERSIONS, "each WIT folder is served, newest last");
}
