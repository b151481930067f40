//! `--max-startups start:rate:full`: OpenSSH's MaxStartups triple and its random-early-drop
//! rule. The acceptor's admission state that applies it is `runtime::startups`.

/// OpenSSH's MaxStartups triple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxStartups {
    pub start: usize,
    pub rate: u32,
    pub full: usize,
}

impl MaxStartups {
    /// Parses `start:rate:full` or a single `full` (then start = full, as sshd does).
    pub fn parse(s: &str) -> Result<MaxStartups, String> {
        let nums: Vec<&str> = s.split(':').collect();
        let num = |v: &str| v.trim().parse::<usize>().map_err(|_| format!("'{s}': not a number"));
        let m = match nums.as_slice() {
            [full] => {
                let full = num(full)?;
                MaxStartups { start: full, rate: 100, full }
            }
            [start, rate, full] => {
                let rate = num(rate)?;
                MaxStartups { start: num(start)?, rate: rate.min(101) as u32, full: num(full)? }
            }
            _ => return Err(format!("'{s}': expected start:rate:full")),
        };
        if m.full == 0 || m.start > m.full || m.rate > 100 {
            return Err(format!("'{s}': need 0 < start <= full and rate <= 100"));
        }
        Ok(m)
    }

    /// Whether to drop a new connection with `startups` already open; `r` is uniform in 0..100.
    pub fn should_drop(&self, startups: usize, r: u32) -> bool {
        if startups < self.start {
            return false;
        }
        if startups >= self.full || self.rate >= 100 {
            return true;
        }
        // p = rate + (100 - rate) * (startups - start) / (full - start), as sshd computes it.
        let span = (self.full - self.start) as u64;
        let p = u64::from(self.rate)
            + u64::from(100 - self.rate) * (startups - self.start) as u64 / span.max(1);
        u64::from(r) < p
    }
}
