//! `--config FILE` (TOML): every command-line flag is a key of the same name, with no list of
//! keys kept here. The file's keys become `--key=value` arguments placed before the real command
//! line and parsed by the same clap definition, so a flag added to `cli.rs` is a config key at
//! once, is checked by the same value parser, and a flag given on the command line wins (its
//! key in the file is skipped, for repeatable flags too: the command line replaces the list).
//!
//! ```toml
//! listen = ["0.0.0.0:22", "[::]:22"]   # repeatable flags take an array
//! crypto-policy = "modern"
//! allow-exec = true                     # switches take true/false
//! max-auth-tries = 3
//! ```
//!
//! Errors name `FILE:LINE` and the key. The `[routes]` table is the session proxy's routes, in
//! the routes file's format (`user_split`, `[[routes.route]]`); `routes = "FILE"` names a
//! routes file instead, as `--routes` does.

use crate::cli::Args;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Top-level tables that are not flags: the session proxy's routes.
pub const RESERVED_TABLES: &[&str] = &["routes"];
/// A config file larger than this is refused (a config is a few KiB).
pub const MAX_FILE_LEN: u64 = 1 << 20;

/// Why the command line and file could not be turned into [`Args`].
#[derive(Debug)]
pub enum LoadError {
    /// The command line itself is wrong (clap's error, printed as before).
    Cli(clap::Error),
    /// The config file is wrong: one message per error, each starting with `FILE:LINE:`.
    File(Vec<String>),
}

/// The merged arguments, and where each flag taken from the file was written.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub args: Args,
    pub matches: ArgMatches,
    /// `--flag` → `FILE:LINE` for values that came from the file.
    pub origin: HashMap<String, String>,
}

impl Loaded {
    /// A config error, prefixed with `FILE:LINE:` when its flag's value came from the file.
    pub fn describe(&self, e: &super::ConfigError) -> String {
        match self.origin.get(e.flag) {
            Some(at) => format!("{at}: {e}"),
            None => e.to_string(),
        }
    }
}

/// Parses `argv` (program name first) and, with `--config FILE`, the file under it.
pub fn load(argv: &[OsString]) -> Result<Loaded, LoadError> {
    let cmd = Args::command();
    let cli = cmd.clone().try_get_matches_from(argv).map_err(LoadError::Cli)?;
    let Some(path) = cli.get_one::<PathBuf>("config").cloned() else {
        return finish(cli, argv, HashMap::new());
    };
    let (file_args, origin, inline) = file_arguments(&path, &cli).map_err(LoadError::File)?;
    let mut merged: Vec<OsString> = argv.iter().take(1).cloned().collect();
    merged.extend(file_args.into_iter().map(OsString::from));
    merged.extend(argv.iter().skip(1).cloned());
    let m = cmd.try_get_matches_from(&merged).map_err(|e| {
        LoadError::File(vec![format!("{}: {}", path.display(), first_line(&e.to_string()))])
    })?;
    let mut loaded = finish(m, argv, origin)?;
    if loaded.args.routes.is_none() {
        loaded.args.routes_inline = inline.map(|text| (path, text));
    }
    Ok(loaded)
}

fn finish(
    m: ArgMatches,
    argv: &[OsString],
    origin: HashMap<String, String>,
) -> Result<Loaded, LoadError> {
    let mut args = Args::from_arg_matches(&m).map_err(LoadError::Cli)?;
    args.argv = argv.to_vec();
    Ok(Loaded { args, matches: m, origin })
}

/// `--flag` → `FILE:LINE`.
type Origins = HashMap<String, String>;

/// The file's keys as `--key=value` arguments, skipping flags given on the command line, and
/// the file's text when it has a `[routes]` table; every error found, each with its line.
fn file_arguments(
    path: &Path,
    cli: &ArgMatches,
) -> Result<(Vec<String>, Origins, Option<String>), Vec<String>> {
    let name = path.display().to_string();
    let text = read_bounded(path).map_err(|e| vec![format!("{name}: {e}")])?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(0, |s| line_of_offset(&text, s.start));
        vec![format!("{name}:{line}: {}", first_line(e.message()))]
    })?;
    let cmd = Args::command();
    let mut out = Vec::new();
    let mut origin = HashMap::new();
    let mut errors = Vec::new();
    let mut inline = false;
    for (key, value) in &table {
        let at = format!("{name}:{}", line_of_key(&text, key));
        // `routes = "FILE"` is the flag; a table is the routes themselves.
        if RESERVED_TABLES.contains(&key.as_str()) && !value.is_str() {
            if value.is_table() {
                inline = true;
            } else {
                errors.push(format!("{at}: [{key}] is a table (routes) or a file name"));
            }
            continue;
        }
        let arg = cmd.get_arguments().find(|a| {
            a.get_long() == Some(key.as_str()) && !matches!(key.as_str(), "config" | "help")
        });
        let Some(arg) = arg else {
            errors.push(format!("{at}: unknown key '{key}' (keys are the long flag names)"));
            continue;
        };
        let id = arg.get_id().as_str();
        if cli.value_source(id) == Some(ValueSource::CommandLine) {
            continue; // the command line wins
        }
        let tokens = match tokens_for(key, arg.get_action(), value) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{at}: {key}: {e}"));
                continue;
            }
        };
        // The flag's own value parser, alone, so each bad value is reported.
        let alone = std::iter::once("sshfront".to_string()).chain(tokens.iter().cloned());
        if let Err(e) = cmd.clone().try_get_matches_from(alone) {
            errors.push(format!("{at}: {key}: {}", clap_reason(&e)));
            continue;
        }
        origin.insert(format!("--{key}"), at);
        out.extend(tokens);
    }
    if errors.is_empty() {
        Ok((out, origin, inline.then_some(text)))
    } else {
        Err(errors)
    }
}

/// `--key=value` tokens for one TOML value, by what the flag takes.
fn tokens_for(key: &str, action: &ArgAction, value: &toml::Value) -> Result<Vec<String>, String> {
    use toml::Value;
    match action {
        ArgAction::SetTrue => match value {
            Value::Boolean(true) => Ok(vec![format!("--{key}")]),
            Value::Boolean(false) => Ok(Vec::new()),
            _ => Err("expects true or false".into()),
        },
        ArgAction::Append => match value {
            Value::Array(items) => {
                items.iter().map(|v| scalar(v).map(|s| format!("--{key}={s}"))).collect()
            }
            v => Ok(vec![format!("--{key}={}", scalar(v)?)]),
        },
        _ => match value {
            Value::Array(_) => Err("takes one value, not an array".into()),
            v => Ok(vec![format!("--{key}={}", scalar(v)?)]),
        },
    }
}

fn scalar(v: &toml::Value) -> Result<String, String> {
    use toml::Value;
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        Value::Boolean(b) => Ok(b.to_string()),
        Value::Datetime(d) => Ok(d.to_string()),
        Value::Array(_) | Value::Table(_) => Err("expects a string or a number".into()),
    }
}

fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(format!("larger than {MAX_FILE_LEN} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8".into())
}

/// 1-based line of a byte offset.
fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset).filter(|&&b| b == b'\n').count() + 1
}

/// 1-based line where a top-level `key =` is written (bare or quoted), 0 if not found.
fn line_of_key(text: &str, key: &str) -> usize {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with('[') && !RESERVED_TABLES.iter().any(|r| t.contains(r)) {
            break;
        }
        let rest = t
            .strip_prefix(key)
            .or_else(|| t.strip_prefix(&format!("\"{key}\"")))
            .or_else(|| t.strip_prefix(&format!("'{key}'")));
        if rest.is_some_and(|r| r.trim_start().starts_with('='))
            || t.starts_with(&format!("[{key}]"))
        {
            return i + 1;
        }
    }
    0
}

fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid")
        .trim_start_matches("error: ")
}

/// clap's reason without the usage noise ("invalid value 'x' for '--workers <N>': …").
fn clap_reason(e: &clap::Error) -> String {
    first_line(&e.render().to_string()).to_string()
}

/// A configuration re-read on SIGHUP.
pub struct Reloaded {
    pub args: Args,
    pub config: super::Config,
    /// The routes did not load (`file:line: why`); the config carries the routes in use.
    pub routes_error: Option<String>,
}

/// Re-reads the command line and file (SIGHUP) and validates the result. Routes that do not
/// load keep `current` (see [`super::Config::reload`]).
pub fn reload(
    argv: &[OsString],
    current: Option<std::sync::Arc<crate::proxy::Routes>>,
) -> Result<Reloaded, Vec<String>> {
    let loaded = match load(argv) {
        Ok(l) => l,
        Err(LoadError::Cli(e)) => return Err(vec![clap_reason(&e)]),
        Err(LoadError::File(errors)) => return Err(errors),
    };
    match super::Config::reload(&loaded.args, current) {
        Ok((config, routes_error)) => Ok(Reloaded { args: loaded.args, config, routes_error }),
        Err(e) => Err(vec![loaded.describe(&e)]),
    }
}

/// `sshfront check-config`: validates without starting (no socket, no key generation) and
/// returns the effective configuration as TOML, or every error found.
pub fn check(loaded: &Loaded) -> Result<String, Vec<String>> {
    let args = &loaded.args;
    let server =
        super::server_config_without_host_keys(args).map_err(|e| vec![loaded.describe(&e)])?;
    if !args.host_key.is_empty() {
        super::host_keys::load_files(&super::host_keys::RealKeys, &args.host_key)
            .map_err(|e| vec![loaded.describe(&super::ConfigError::new("--host-key", e))])?;
    }
    let mut out =
        String::from("# effective configuration (command line over file over defaults)\n");
    for arg in Args::command().get_arguments() {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        if matches!(long, "config" | "help" | "version") {
            continue;
        }
        let line = match arg.get_action() {
            ArgAction::SetTrue => format!("{long} = {}", loaded.matches.get_flag(id)),
            action => match loaded.matches.get_raw(id) {
                None => format!("# {long} = (not set)"),
                Some(raw) => {
                    let vals: Vec<String> = raw.map(|v| toml_value(&v.to_string_lossy())).collect();
                    if matches!(action, ArgAction::Append) {
                        format!("{long} = [{}]", vals.join(", "))
                    } else {
                        format!("{long} = {}", vals.join(", "))
                    }
                }
            },
        };
        out.push_str(&line);
        out.push('\n');
    }
    let t = &server.transport;
    let names = |v: Vec<&str>| v.join(",");
    out.push_str("# resulting algorithm lists:\n");
    out.push_str(&format!("#   kex = {}\n", names(t.kex.iter().map(|k| k.name).collect())));
    out.push_str(&format!("#   ciphers = {}\n", names(t.ciphers.iter().map(|c| c.name).collect())));
    out.push_str(&format!("#   macs = {}\n", names(t.macs.iter().map(|m| m.name).collect())));
    out.push_str(&format!(
        "#   host-key-algorithms = {}\n",
        names(t.host_key_algs.iter().map(|a| a.name()).collect())
    ));
    out.push_str(&format!("#   compression = {}\n", t.compression.join(",")));
    Ok(out)
}

/// A value as TOML: integers bare, everything else a basic string. A JSON string with every
/// control character escaped is also a valid TOML basic string (the same escapes, and `\uXXXX`
/// takes either case of hex digit).
fn toml_value(s: &str) -> String {
    if s.parse::<i64>().is_ok() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    crate::wire::json::push_string(&mut out, s, crate::wire::json::Escape::LineSafe);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the effective-configuration dump writes reads back as the same string.
    #[test]
    fn toml_values_read_back_as_written() {
        for v in [
            "plain",
            "a \"quoted\" \\ path",
            "line\nbreak\r\ttab",
            "\u{1}\u{7f}\u{9f}",
            "\u{2028}é€",
        ] {
            let doc = format!("k = {}", toml_value(v));
            let table: toml::Table = doc.parse().unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(table["k"].as_str(), Some(v), "{doc}");
        }
        assert_eq!(toml_value("22"), "22");
    }

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sshfront-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn argv(extra: &[&str]) -> Vec<OsString> {
        std::iter::once("sshfront").chain(extra.iter().copied()).map(OsString::from).collect()
    }

    #[test]
    fn keys_become_flags_and_the_command_line_wins() {
        let p = write(
            "ok.toml",
            "listen = [\"127.0.0.1:2200\", \"[::1]:2200\"]\nkex = \"-ecdh*\"\nallow-exec = true\n\
             max-auth-tries = 3\ncrypto-policy = \"modern\"\n[routes]\nx = 1\n",
        );
        let l = load(&argv(&["--config", p.to_str().unwrap(), "--max-auth-tries", "5"])).unwrap();
        assert_eq!(l.args.listen.len(), 2);
        assert_eq!(l.args.kex.as_deref(), Some("-ecdh*"));
        assert!(l.args.allow_exec);
        assert_eq!(l.args.max_auth_tries, 5, "command line over file");
        assert_eq!(l.args.crypto_policy, crate::cli::CryptoPolicy::Modern);
        assert!(l.origin["--kex"].ends_with("ok.toml:2"), "{:?}", l.origin);
        let l = load(&argv(&["--listen", "127.0.0.1:1", "--config", p.to_str().unwrap()])).unwrap();
        assert_eq!(
            l.args.listen.len(),
            1,
            "a repeatable flag on the command line replaces the list"
        );
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let p = write(
            "bad.toml",
            "# comment\nworkers = 0\nbogus = 1\nallow-exec = \"yes\"\nlisten = \"nope\"\n\
             max-auth-tries = [1, 2]\n",
        );
        let Err(LoadError::File(errors)) = load(&argv(&["--config", p.to_str().unwrap()])) else {
            panic!("expected file errors");
        };
        assert_eq!(errors.len(), 5, "{errors:#?}");
        for (line, what) in
            [(2, "workers"), (3, "bogus"), (4, "allow-exec"), (5, "listen"), (6, "max-auth-tries")]
        {
            assert!(
                errors.iter().any(|e| e.contains(&format!("bad.toml:{line}:")) && e.contains(what)),
                "{line} {what}: {errors:#?}"
            );
        }
        let p = write("syntax.toml", "a = 1\nb = = 2\n");
        let Err(LoadError::File(errors)) = load(&argv(&["--config", p.to_str().unwrap()])) else {
            panic!("expected a syntax error");
        };
        assert!(errors[0].contains("syntax.toml:2:"), "{errors:?}");
    }

    #[test]
    fn semantic_errors_point_into_the_file() {
        let p = write("sem.toml", "\n\nciphers = \"rot13\"\n");
        let l = load(&argv(&["--config", p.to_str().unwrap()])).unwrap();
        let errors = check(&l).unwrap_err();
        assert!(errors[0].starts_with(&format!("{}:3: --ciphers", p.display())), "{errors:?}");
    }

    #[test]
    fn check_prints_every_flag() {
        let l = load(&argv(&["--crypto-policy", "modern", "--permit-open", "db:5432"])).unwrap();
        let out = check(&l).unwrap();
        assert!(out.contains("crypto-policy = \"modern\"\n"), "{out}");
        assert!(out.contains("permit-open = [\"db:5432\"]\n"), "{out}");
        assert!(out.contains("max-auth-tries = 6\n"), "{out}");
        assert!(out.contains("allow-exec = false\n"), "{out}");
        assert!(out.contains("#   kex = mlkem768x25519-sha256,"), "{out}");
        // The output is itself a valid config (comments aside).
        let p = write("roundtrip.toml", &out);
        let again = load(&argv(&["--config", p.to_str().unwrap()])).unwrap();
        assert_eq!(check(&again).unwrap(), out);
    }
}
