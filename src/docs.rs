//! `sshfront generate-docs DIR`: the man page `sshfront(8)` and shell completions, generated
//! from the clap definitions in [`crate::cli`] so they never drift from `--help`. The results
//! are committed under `packaging/` and a test regenerates them to check they are current.

use crate::cli::Args;
use clap::CommandFactory;
use clap_complete::Shell;
use std::io;
use std::path::{Path, PathBuf};

/// Shells we ship completions for, and the file each reads.
pub const SHELLS: &[(Shell, &str)] = &[
    (Shell::Bash, "completions/sshfront.bash"),
    (Shell::Zsh, "completions/_sshfront"),
    (Shell::Fish, "completions/sshfront.fish"),
];
/// Where the man page goes under DIR.
pub const MAN_PAGE: &str = "man/sshfront.8";

/// Writes the man page and the completions under `dir`; returns the files written.
pub fn generate(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let cmd = Args::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Manager's Manual")
        .render(&mut page)?;
    written.push(write(dir, MAN_PAGE, &page)?);
    for (shell, rel) in SHELLS {
        let mut out = Vec::new();
        clap_complete::generate(*shell, &mut cmd.clone(), "sshfront", &mut out);
        written.push(write(dir, rel, &out)?);
    }
    Ok(written)
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, bytes)?;
    Ok(path)
}
