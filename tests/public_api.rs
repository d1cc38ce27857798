//! Goal: the public API an embedder sees (`default-features = false`) is
//! exactly the intended list, and the hazards it used to hand out no
//! longer compile: reaching the log behind the ledger's back
//! (`ledger.store().wal().append(..)`), executing an unchecked command
//! (`ledger.store().execute(..)`), naming storage internals, and building
//! options field by field. Method: document the crate as an embedder
//! builds it and list the items rustdoc writes a page for, compared with
//! `tests/public-api.txt`; then `cargo check` a small crate that depends
//! on syncpay the same way, one binary per hazard plus one that uses the
//! public API (the control: it must compile, so the failures are the
//! hazards and not the setup).
//!
//! Both use their own target directory and `--offline` (the main build has
//! fetched every dependency already). `SYNCPAY_BLESS_API=1` rewrites the
//! expected list after an intended change.

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    manifest_dir().join("target").join("api-check")
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTDOCFLAGS");
    command
}

/// The items rustdoc documents: one page per public item, named like
/// `struct.Ledger.html` under the module path it is reachable at.
fn documented_items(doc_root: &Path) -> Vec<String> {
    let mut items = Vec::new();
    let mut stack = vec![doc_root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("doc dir") {
            let path = entry.expect("doc entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".html") else {
                continue;
            };
            if stem == "all" || stem == "index" || !stem.contains('.') {
                continue;
            }
            // Items re-exported from a private module leave a redirect page
            // at their definition's path: not a public path.
            let page = std::fs::read_to_string(&path).expect("doc page");
            if page.contains("http-equiv=\"refresh\"") {
                continue;
            }
            let module: Vec<String> = path
                .parent()
                .expect("parent")
                .strip_prefix(doc_root.parent().expect("doc root parent"))
                .expect("under the doc root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let (kind, item) = stem.split_once('.').expect("kind.name");
            items.push(format!("{kind} {}::{item}", module.join("::")));
        }
    }
    items.sort();
    items
}

#[test]
fn public_api_is_the_intended_list() {
    let status = cargo()
        .current_dir(manifest_dir())
        .args([
            "doc",
            "--offline",
            "--quiet",
            "--no-deps",
            "--lib",
            "--no-default-features",
        ])
        .status()
        .expect("run cargo doc");
    assert!(status.success(), "cargo doc failed");
    let actual = documented_items(&target_dir().join("doc").join("syncpay"));
    let expected_path = manifest_dir().join("tests").join("public-api.txt");
    if std::env::var_os("SYNCPAY_BLESS_API").is_some() {
        std::fs::write(&expected_path, actual.join("\n") + "\n").expect("write list");
    }
    let expected: Vec<String> = std::fs::read_to_string(&expected_path)
        .expect("tests/public-api.txt")
        .lines()
        .map(str::to_owned)
        .collect();
    let added: Vec<&String> = actual.iter().filter(|i| !expected.contains(i)).collect();
    let removed: Vec<&String> = expected.iter().filter(|i| !actual.contains(i)).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "public API changed (SYNCPAY_BLESS_API=1 accepts it):\n added: {added:#?}\n removed: {removed:#?}"
    );
    // Nothing of the storage core or the test kit is public.
    for item in &actual {
        for internal in [
            "storage", "testing", "rng", "codec", "dedup", "Store", "Wal",
        ] {
            assert!(
                !item
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|w| w == internal),
                "{item} exposes {internal}"
            );
        }
    }
    assert!(actual.len() < 60, "{} public items", actual.len());
}

const HAZARDS: &[(&str, &str, &str)] = &[
    (
        "append_behind_the_ledger",
        "fn main() {
            let ledger = syncpay::Ledger::open(\"x\", syncpay::LedgerOptions::default()).unwrap();
            ledger.store().wal().append(b\"x\").unwrap();
        }",
        "no method named `store`",
    ),
    (
        "execute_unchecked_command",
        "fn main() {
            let ledger = syncpay::Ledger::open(\"x\", syncpay::LedgerOptions::default()).unwrap();
            let _ = ledger.store().execute(());
        }",
        "no method named `store`",
    ),
    (
        "name_the_log",
        "fn main() {
            let _ = syncpay::storage::wal::WalOptions::default();
        }",
        "private",
    ),
    (
        "name_the_command_codec",
        "fn main() {
            let _ = syncpay::ledger::codec::COMMAND_HEADER_BYTES;
        }",
        "private",
    ),
    (
        "options_by_field",
        "fn main() {
            let mut options = syncpay::LedgerOptions::default();
            options.segment_size_bytes = 4096;
        }",
        "field",
    ),
    (
        "swap_the_disk",
        "fn main() {
            let _ = syncpay::LedgerOptions::default().io(std::sync::Arc::new(()));
        }",
        "no method named `io`",
    ),
];

const CONTROL: &str = "fn main() -> Result<(), syncpay::Error> {
    let options = syncpay::LedgerOptions::new()
        .recovery_mode(syncpay::RecoveryMode::Repair)
        .checkpoint_interval_bytes(0);
    let ledger = syncpay::Ledger::create(\"x\", options)?;
    let results = ledger.create_accounts(&[syncpay::Account::default()])?;
    let _: Vec<syncpay::CreateAccountResult> = results;
    let _: syncpay::Stats = ledger.stats();
    let _: &syncpay::recovery::Recovery = ledger.recovery();
    let _: syncpay::ErrorKind = syncpay::Error::kind(&ledger.checkpoint().unwrap_err());
    ledger.close()
}";

#[test]
fn hazards_no_longer_compile() {
    let root = target_dir().join("hazards");
    let src = root.join("src").join("bin");
    std::fs::create_dir_all(&src).expect("mkdir");
    let manifest = format!(
        "[package]\nname = \"hazards\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nsyncpay = {{ path = {:?}, default-features = false }}\n\n[workspace]\n",
        manifest_dir()
    );
    std::fs::write(root.join("Cargo.toml"), manifest).expect("manifest");
    // The main lock file pins the same versions, so --offline resolves.
    std::fs::copy(manifest_dir().join("Cargo.lock"), root.join("Cargo.lock")).expect("lock");
    std::fs::write(src.join("control.rs"), CONTROL).expect("control");
    for (name, body, _) in HAZARDS {
        std::fs::write(src.join(format!("{name}.rs")), body).expect("hazard");
    }
    let output = cargo()
        .current_dir(&root)
        .args([
            "check",
            "--offline",
            "--keep-going",
            "--bins",
            "--message-format",
            "short",
        ])
        .output()
        .expect("run cargo check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the hazards compiled:\n{stderr}");
    let errors_of = |name: &str| -> Vec<&str> {
        stderr
            .lines()
            .filter(|l| l.starts_with(&format!("src/bin/{name}.rs:")))
            .collect()
    };
    assert!(
        errors_of("control").is_empty() && !stderr.contains("bin \"control\""),
        "the public-API control failed to compile:\n{stderr}"
    );
    for (name, _, expected) in HAZARDS {
        let errors = errors_of(name);
        assert!(
            errors
                .iter()
                .any(|e| e.contains("error") && e.contains(expected)),
            "{name} should fail with {expected:?}; got {errors:#?}\n{stderr}"
        );
    }
}
