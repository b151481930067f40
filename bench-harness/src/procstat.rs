//! CPU time and memory of a process tree from /proc, and of the harness from getrusage.

use std::collections::HashMap;
use std::fs;

/// The fields of /proc/PID/stat we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub pid: u32,
    pub ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    pub ticks: u64,
}

/// Parses one /proc/PID/stat line. The command name is in parentheses and may contain spaces
/// and parentheses, so fields are counted from the last ')'.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let pid = line.split_whitespace().next()?.parse().ok()?;
    let rest = &line[line.rfind(')')? + 1..];
    // rest starts at field 3 (state); ppid is field 4, utime..cstime fields 14..17.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i - 3).and_then(|s| s.parse::<u64>().ok());
    let ppid = u32::try_from(num(4)?).ok()?;
    let ticks = num(14)? + num(15)? + num(16)? + num(17)?;
    Some(Stat { pid, ppid, ticks })
}

fn all_stats() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let name = e.file_name();
        name.to_str()?.parse::<u32>().ok()?;
        parse_stat(&fs::read_to_string(e.path().join("stat")).ok()?)
    })
    .collect()
}

/// `root` and every live descendant.
pub fn tree(root: u32) -> Vec<u32> {
    tree_of(root, &all_stats())
}

/// The pids under `root` (inclusive) among `stats`.
pub fn tree_of(root: u32, stats: &[Stat]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for s in stats {
        children.entry(s.ppid).or_default().push(s.pid);
    }
    let mut out = Vec::new();
    if !stats.iter().any(|s| s.pid == root) {
        return out;
    }
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        if out.len() > 100_000 {
            break;
        }
        out.push(p);
        if let Some(c) = children.get(&p) {
            stack.extend(c.iter().copied());
        }
    }
    out
}

/// CPU seconds of the tree: each live process's own time plus that of its reaped children,
/// so processes that came and went between two samples are still counted (once reaped).
pub fn tree_cpu_seconds(root: u32) -> Option<f64> {
    let stats = all_stats();
    let pids = tree_of(root, &stats);
    if pids.is_empty() {
        return None;
    }
    let ticks: u64 = stats.iter().filter(|s| pids.contains(&s.pid)).map(|s| s.ticks).sum();
    Some(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Memory of the tree in bytes: (RSS sum, PSS sum). PSS splits shared pages between the
/// processes sharing them, so it does not count sshd's shared text once per process.
pub fn tree_memory(root: u32) -> Option<(u64, u64)> {
    let pids = tree(root);
    if pids.is_empty() {
        return None;
    }
    let (mut rss, mut pss) = (0u64, 0u64);
    for p in pids {
        if let Ok(t) = fs::read_to_string(format!("/proc/{p}/smaps_rollup")) {
            rss += kib_field(&t, "Rss:").unwrap_or(0) * 1024;
            pss += kib_field(&t, "Pss:").unwrap_or(0) * 1024;
        } else if let Ok(t) = fs::read_to_string(format!("/proc/{p}/status")) {
            let v = kib_field(&t, "VmRSS:").unwrap_or(0) * 1024;
            rss += v;
            pss += v;
        }
    }
    Some((rss, pss))
}

/// `Name:   123 kB` → 123.
pub fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) of this process, all threads.
pub fn self_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Raises the soft open-files limit to the hard limit (idle mode holds many sockets).
pub fn raise_nofile() {
    // SAFETY: plain get/setrlimit on a local struct.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_name() {
        let line = "4242 (ss hd) (x)) S 17 4242 4242 0 -1 4194560 100 0 0 0 \
                    25 7 3 1 20 0 1 0 123 4567 89 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s, Stat { pid: 4242, ppid: 17, ticks: 25 + 7 + 3 + 1 });
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("12 (x) S 1 2").is_none());
    }

    #[test]
    fn tree_collects_descendants_only() {
        let st = |pid, ppid| Stat { pid, ppid, ticks: 0 };
        let stats = [st(1, 0), st(10, 1), st(11, 10), st(12, 11), st(20, 1), st(13, 10)];
        let mut t = tree_of(10, &stats);
        t.sort_unstable();
        assert_eq!(t, vec![10, 11, 12, 13]);
        assert!(tree_of(99, &stats).is_empty());
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(tree_cpu_seconds(me).is_some());
        let (rss, _) = tree_memory(me).unwrap();
        assert!(rss > 0);
        assert_eq!(kib_field("VmRSS:\t  1234 kB\n", "VmRSS:"), Some(1234));
    }
}
