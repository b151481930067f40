//! The committed man page and shell completions under `packaging/` are what
//! `sshfront generate-docs` produces from the current clap definitions. When a flag changes,
//! regenerate them: `cargo run --release -- generate-docs packaging`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::{run, TempDir};
use std::path::Path;

#[test]
fn man_page_and_completions_are_current() {
    let dir = TempDir::new("docs");
    let out = run(&["generate-docs", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging");
    let files = [
        "man/sshfront.8",
        "completions/sshfront.bash",
        "completions/_sshfront",
        "completions/sshfront.fish",
    ];
    let mut stale = Vec::new();
    for rel in files {
        let fresh = std::fs::read(dir.path().join(rel)).expect(rel);
        let committed = std::fs::read(repo.join(rel)).unwrap_or_default();
        if fresh != committed {
            stale.push(rel);
        }
        // Every flag is in each file.
        let text = String::from_utf8_lossy(&fresh).replace("\\-", "-");
        for flag in ["crypto-policy", "config", "log-format", "check-config", "generate-docs"] {
            assert!(text.contains(flag), "{rel} lacks {flag}");
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} out of date: run `cargo run --release -- generate-docs packaging` and commit"
    );
}
