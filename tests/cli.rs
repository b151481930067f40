//! The command line as a user meets it: bad values are refused with one line naming the flag
//! and exit code 2; `--help` lists every flag; host keys are generated once with mode 0600.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::{run, Server, TempDir};
use std::os::unix::fs::PermissionsExt;

/// Every flag of issue 3 (and the port file the tests need).
const FLAGS: &[&str] = &[
    "--listen",
    "--data-dir",
    "--host-key",
    "--workers",
    "--crypto-threads",
    "--crypto-queue",
    "--kex",
    "--ciphers",
    "--macs",
    "--host-key-algorithms",
    "--compression",
    "--rekey-limit",
    "--login-grace-time",
    "--max-connections",
    "--log-level",
    "--stats-interval",
    "--drain-timeout",
    "--max-buffer-memory",
    "--port-file",
    "--authorized-keys",
    "--password-file",
    "--auth-methods",
    "--max-auth-tries",
    "--banner",
    "--permit-open",
    "--permit-listen",
    "--max-sessions",
    "--session-command",
    "--allow-exec",
    "--env-allow",
    "--keepalive-interval",
    "--keepalive-count-max",
    "--connect-timeout",
    "--routes",
];

#[test]
fn help_lists_every_flag() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in FLAGS {
        assert!(help.contains(flag), "--help does not mention {flag}:\n{help}");
    }
}

#[test]
fn bad_values_exit_2_with_one_line_naming_the_flag() {
    let dir = TempDir::new("cli");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 temp path");
    let cases: &[(&[&str], &str)] = &[
        (&["--workers", "0"], "--workers"),
        (&["--workers", "many"], "--workers"),
        (&["--crypto-threads", "-3"], "--crypto-threads"),
        (&["--crypto-queue", "0"], "--crypto-queue"),
        (&["--listen", "localhost"], "--listen"),
        (&["--listen", "127.0.0.1:99999"], "--listen"),
        (&["--kex", "diffie-hellman-group0-md5"], "--kex"),
        (&["--ciphers", "+rot13"], "--ciphers"),
        (&["--macs", "-hmac-nothing"], "--macs"),
        (&["--host-key-algorithms", "ssh-dss"], "--host-key-algorithms"),
        (&["--compression", "zstd"], "--compression"),
        (&["--compression", ""], "--compression"),
        (&["--rekey-limit", "1X"], "--rekey-limit"),
        (&["--rekey-limit", "1G:soon"], "--rekey-limit"),
        (&["--login-grace-time", "0"], "--login-grace-time"),
        (&["--max-connections", "0"], "--max-connections"),
        (&["--log-level", "loud"], "--log-level"),
        (&["--stats-interval", "often"], "--stats-interval"),
        (&["--drain-timeout", "-1"], "--drain-timeout"),
        (&["--max-buffer-memory", "lots"], "--max-buffer-memory"),
        (&["--max-buffer-memory", "4K"], "--max-buffer-memory"),
        (&["--host-key", "/nonexistent/sshfront/key"], "--host-key"),
        (&["--no-such-flag"], "--no-such-flag"),
        (&["--max-auth-tries", "0"], "--max-auth-tries"),
        (&["--auth-methods", "publickey,telepathy"], "--auth-methods"),
        (&["--auth-methods", "password"], "--auth-methods"),
        (&["--password-file", "/nonexistent/sshfront/pw"], "--password-file"),
        (&["--banner", "/nonexistent/sshfront/banner"], "--banner"),
        (&["--permit-open", "nohostport"], "--permit-open"),
        (&["--permit-listen", "localhost:http"], "--permit-listen"),
        (&["--max-sessions", "0"], "--max-sessions"),
        (&["--env-allow", "A=1"], "--env-allow"),
        (&["--keepalive-count-max", "0"], "--keepalive-count-max"),
        (&["--connect-timeout", "0"], "--connect-timeout"),
        (&["--routes", "/nonexistent/sshfront/routes.toml"], "--routes"),
    ];
    for (args, flag) in cases {
        let mut all = vec!["--data-dir", data];
        all.extend_from_slice(args);
        let out = run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let text = stderr.trim_end();
        assert_eq!(text.lines().count(), 1, "{args:?}: want one line, got:\n{text}");
        assert!(text.contains(flag), "{args:?}: message does not name {flag}: {text}");
    }
    assert!(!dir.path().join("data").exists(), "validation must not touch the data dir");
}

#[test]
fn a_bad_routes_file_is_refused_naming_file_and_line() {
    let dir = TempDir::new("routes");
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, "[[route]]\nuser = \"a\"\nupstreams = [\"db1:0\"]\nauth = \"agent\"\n")
        .expect("write routes");
    let data = dir.path().join("data");
    let out = run(&["--data-dir", data.to_str().unwrap(), "--routes", routes.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--routes") && stderr.contains("routes.toml:3:"), "{stderr}");
}

#[test]
fn refuses_host_key_readable_by_others() {
    let dir = TempDir::new("perm");
    let key = dir.path().join("key");
    std::fs::write(&key, "not checked before the mode").expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run(&["--host-key", key.to_str().expect("utf-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--host-key") && stderr.contains("too open"), "{stderr}");
}

#[test]
fn first_start_generates_host_keys_0600_and_second_start_reuses_them() {
    let server = Server::start_generating_keys(&["--workers", "1", "--crypto-threads", "1"]);
    let keys = server.key_dir();
    let names = ["ssh_host_ed25519_key", "ssh_host_ecdsa_key", "ssh_host_rsa_key"];
    let mut first = Vec::new();
    for name in names {
        let p = keys.join(name);
        let mode = std::fs::metadata(&p).expect(name).permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
        assert!(keys.join(format!("{name}.pub")).exists(), "{name}.pub");
        first.push(std::fs::read(&p).expect(name));
    }
    let dir_mode = std::fs::metadata(&keys).expect("key dir").permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let (data_dir, log) = server.stop();
    assert!(log.contains("listening on 127.0.0.1:"), "{log}");

    let server = Server::start_in(data_dir, &["--workers", "1", "--crypto-threads", "1"]);
    for (name, before) in names.iter().zip(&first) {
        let after = std::fs::read(server.key_dir().join(name)).expect(name);
        assert_eq!(&after, before, "{name} was regenerated");
    }
    assert!(!server.stderr().contains("generated host key"), "{}", server.stderr());
}

#[test]
fn passwd_subcommand_writes_an_argon2id_line_0600() {
    let dir = TempDir::new("passwd");
    let file = dir.path().join("sub/passwords");
    let mut child = std::process::Command::new(common::bin())
        .args(["passwd", "carol", "--password-file"])
        .arg(&file)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn passwd");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(b"s3cret\n").expect("write");
    let out = child.wait_with_output().expect("passwd");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&file).expect("password file");
    assert!(text.starts_with("carol:$argon2id$"), "{text}");
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let db = sshfront::config::users::load_password_file(&file).expect("parse");
    assert!(db.verify("carol", b"s3cret"));
    // A bad user name is refused with status 1 and the file is untouched.
    let out = run(&["passwd", "a:b", "--password-file", file.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&file).expect("file"), text);
}
