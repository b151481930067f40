//! `sshfront`: parse the command line, validate it into a `Config`, run the server.
//!
//! Exit codes: 0 after a clean shutdown, 2 for a bad flag value (one line naming the flag, like
//! clap's own parse errors) or a bad config file (one line per error, with FILE:LINE), 1 for a
//! runtime failure (e.g. the address is in use).

use sshfront::cli::{Command, DEFAULT_PASSWORD_FILE};
use sshfront::config::file::{self, LoadError};
use sshfront::config::Config;
use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    // `sshfront check-config [flags]`: the flags are the server's own, so take the word out and
    // parse the rest as a server command line.
    let mut check = false;
    if argv.get(1).is_some_and(|a| a == "check-config") {
        argv.remove(1);
        check = true;
    }
    let loaded = match file::load(&argv) {
        Ok(l) => l,
        Err(LoadError::File(errors)) => {
            for e in &errors {
                eprintln!("sshfront: {e}");
            }
            return ExitCode::from(2);
        }
        Err(LoadError::Cli(e)) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                e.exit();
            }
            // clap's first line names the flag; the usage lines after it are noise here.
            let rendered = e.render().to_string();
            let line =
                rendered.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
            eprintln!("sshfront: {}", line.trim());
            return ExitCode::from(2);
        }
    };
    if check || matches!(loaded.args.command, Some(Command::CheckConfig)) {
        return match file::check(&loaded) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("sshfront: {e}");
                }
                ExitCode::from(2)
            }
        };
    }
    if let Some(Command::GenerateDocs { dir }) = &loaded.args.command {
        return match sshfront::docs::generate(dir) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sshfront: generate-docs: {e}");
                ExitCode::from(1)
            }
        };
    }
    let args = loaded.args.clone();
    if let Some(Command::Passwd { user, password_file }) = &args.command {
        let path = password_file
            .clone()
            .or_else(|| args.password_file.clone())
            .unwrap_or_else(|| DEFAULT_PASSWORD_FILE.into());
        return match sshfront::config::passwd::run(user, &path) {
            Ok(()) => {
                eprintln!("sshfront: password for {user} set in {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sshfront: passwd: {e}");
                ExitCode::from(1)
            }
        };
    }
    sshfront::runtime::log::init_with_format(args.log_level, args.log_format);
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sshfront: error: {}", loaded.describe(&e));
            return ExitCode::from(2);
        }
    };
    let result = sshfront::runtime::run(args, config);
    // Lines still queued for the logger thread go out before the process exits.
    log::logger().flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sshfront: error: {e}");
            ExitCode::from(1)
        }
    }
}
