//! `sshfront`: parse the command line, validate it into a `Config`, run the server.
//!
//! Exit codes: 0 after a clean shutdown, 2 for a bad flag value (one line naming the flag, like
//! clap's own parse errors), 1 for a runtime failure (e.g. the address is in use).

use clap::Parser;
use sshfront::cli::{Args, Command, DEFAULT_PASSWORD_FILE};
use sshfront::config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
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
    sshfront::runtime::log::init(args.log_level);
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sshfront: error: {e}");
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
