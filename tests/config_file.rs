//! `--config FILE`: the shipped example loads, `check-config` prints the effective configuration
//! or names each error with FILE:LINE (exit 2), and SIGHUP re-reads the file: a good file
//! applies to new connections, a bad one is logged line by line, counted in the metrics, and
//! the running configuration stays.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::{run, Server, TempDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

fn example() -> String {
    format!("{}/packaging/sshfront.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_shipped_example_is_valid() {
    let out = run(&["check-config", "--config", &example()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("crypto-policy = \"modern\"\n"), "{text}");
    assert!(text.contains("#   kex = mlkem768x25519-sha256,"), "{text}");
    // The command line wins over the file.
    let out = run(&["check-config", "--config", &example(), "--crypto-policy", "compat"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("crypto-policy = \"compat\"\n"));
}

#[test]
fn check_config_names_each_error_and_exits_2() {
    let dir = TempDir::new("cfg");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen = [\"127.0.0.1:0\"]\nworkers = 0\nno-such-flag = 1\n").unwrap();
    let p = path.to_str().unwrap();
    let out = run(&["check-config", "--config", p]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{p}:2: workers")), "{err}");
    assert!(err.contains(&format!("{p}:3: unknown key 'no-such-flag'")), "{err}");
    // A value clap accepts but validation refuses: still FILE:LINE and the flag.
    std::fs::write(&path, "# a comment\nmacs = \"hmac-md5\"\n").unwrap();
    let out = run(&["check-config", "--config", p]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{p}:2: --macs: unknown algorithm 'hmac-md5'")), "{err}");
    // The server itself refuses to start the same way.
    let out = run(&["--config", p]);
    assert_eq!(out.status.code(), Some(2));
}

/// The server's KEXINIT, read raw after sending our version line.
fn server_kexinit(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"SSH-2.0-probe\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline && !got.windows(10).any(|w| w == b"hmac-sha2-") {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn wait_log(server: &Server, what: &str, times: usize) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let log = server.stderr();
        if log.matches(what).count() >= times {
            return log;
        }
        assert!(Instant::now() < deadline, "no {what:?} in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric(addr: &str, name: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("{name} missing:\n{body}"))
}

#[test]
fn sighup_rereads_the_file_and_keeps_the_old_config_when_it_is_bad() {
    let dir = TempDir::new("cfg-hup");
    let path = dir.path().join("sshfront.toml");
    let write = |text: &str| {
        let tmp = dir.path().join("tmp.toml");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    write("kex = \"curve25519-sha256\"\nmetrics-listen = \"127.0.0.1:0\"\n");
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    let log = wait_log(&server, "/healthz and /readyz on http://", 1);
    let metrics_addr = log
        .lines()
        .find_map(|l| l.split("on http://").nth(1))
        .map(|a| a.trim().to_string())
        .unwrap();
    let k = server_kexinit(server.addr);
    assert!(k.contains("curve25519-sha256") && !k.contains("ecdh-sha2-nistp256"), "{k}");

    write("kex = \"ecdh-sha2-nistp256\"\nmetrics-listen = \"127.0.0.1:0\"\n");
    server.signal(libc::SIGHUP);
    wait_log(&server, "configuration reloaded", 1);
    let k = server_kexinit(server.addr);
    assert!(k.contains("ecdh-sha2-nistp256") && !k.contains("curve25519-sha256"), "{k}");
    assert_eq!(metric(&metrics_addr, "sshfront_config_reload_failures_total"), "0");

    // Two errors: both logged with their lines; the running configuration stays.
    write("kex = \"nope\"\nmetrics-listen = \"127.0.0.1:0\"\nbogus = true\n");
    server.signal(libc::SIGHUP);
    let log = wait_log(&server, "reload failed", 1);
    let p = path.display().to_string();
    assert!(log.contains(&format!("{p}:3: unknown key 'bogus'")), "{log}");
    write("kex = \"nope\"\nmetrics-listen = \"127.0.0.1:0\"\n");
    server.signal(libc::SIGHUP);
    let log = wait_log(&server, "reload failed", 2);
    assert!(log.contains(&format!("{p}:1: --kex: unknown algorithm 'nope'")), "{log}");
    let k = server_kexinit(server.addr);
    assert!(k.contains("ecdh-sha2-nistp256"), "old config still serves: {k}");
    let deadline = Instant::now() + LIMIT;
    while metric(&metrics_addr, "sshfront_config_reload_failures_total") != "2" {
        assert!(Instant::now() < deadline, "failures not counted");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Routes (`--routes FILE`) follow SIGHUP: a good file is taken for new sessions, a bad one is
/// logged with its FILE:LINE, counted, and the routes in use stay; the rest of the config
/// still reloads. The same routes may live in the config file's `[routes]` table.
#[test]
fn sighup_rereads_routes_and_keeps_them_when_the_file_is_bad() {
    let dir = TempDir::new("routes-hup");
    let routes = dir.path().join("routes.toml");
    let write = |path: &std::path::Path, text: &str| {
        let tmp = dir.path().join("tmp.toml");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    };
    let route = "[[route]]\nname = \"db\"\nuser = \"*\"\nupstreams = [\"127.0.0.1:1\"]\n\
                 auth = \"password\"\n";
    write(&routes, route);
    let server =
        Server::start(&["--routes", routes.to_str().unwrap(), "--metrics-listen", "127.0.0.1:0"]);
    let log = wait_log(&server, "/healthz and /readyz on http://", 1);
    let metrics_addr = log
        .lines()
        .find_map(|l| l.split("on http://").nth(1))
        .map(|a| a.trim().to_string())
        .unwrap();
    // The health checker finds nothing listening on port 1: the route's only upstream goes
    // down after `health_fall` (3) checks... at the default 10 s interval; its gauge exists.
    let deadline = Instant::now() + LIMIT;
    while metric(&metrics_addr, "sshfront_proxy_upstreams{route=\"db\"}") != "1" {
        assert!(Instant::now() < deadline, "route gauge missing");
        std::thread::sleep(Duration::from_millis(100));
    }

    write(&routes, &format!("{route}\n[[route]]\nuser = \"x\"\nupstreams = [\"h:0\"]\n"));
    server.signal(libc::SIGHUP);
    let log = wait_log(&server, "routes not reloaded", 1);
    let p = routes.display().to_string();
    assert!(log.contains(&format!("{p}:9: ")), "the bad line is named: {log}");
    assert!(log.contains("configuration reloaded"), "the rest still reloads: {log}");
    let deadline = Instant::now() + LIMIT;
    while metric(&metrics_addr, "sshfront_routes_reload_failures_total") != "1" {
        assert!(Instant::now() < deadline, "routes failure not counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(metric(&metrics_addr, "sshfront_proxy_upstreams{route=\"db\"}"), "1");

    write(
        &routes,
        &format!("{route}\n[[route]]\nname = \"web\"\nuser = \"w\"\nupstreams = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\nauth = \"agent\"\n"),
    );
    server.signal(libc::SIGHUP);
    wait_log(&server, "SIGHUP: 2 routes for new sessions", 1);
    let deadline = Instant::now() + LIMIT;
    while metric(&metrics_addr, "sshfront_proxy_upstreams{route=\"web\"}") != "2" {
        assert!(Instant::now() < deadline, "new route's gauge missing");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(metric(&metrics_addr, "sshfront_routes_reload_failures_total"), "1");

    // check-config reads a [routes] table of the config file and names its bad lines.
    let cfg = dir.path().join("sshfront.toml");
    write(&cfg, "workers = 1\n\n[routes]\n[[routes.route]]\nuser = \"*\"\nupstreams = [\"db1\"]\nauth = \"agent\"\n");
    let out = run(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    write(&cfg, "workers = 1\n\n[routes]\n[[routes.route]]\nuser = \"*\"\nupstreams = [\"db1\"]\nauth = \"nope\"\n");
    let out = run(&["check-config", "--config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:7: ", cfg.display())), "{err}");
}
