//! AWS auth for Bedrock: SigV4 against the smithy-rs vectors, credential sources, clock skew.

mod chain;
mod refresh;
mod sigv4;
mod skew;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `YYYYMMDDTHHMMSSZ` as a time (test input only: panics on anything else).
pub fn amz_time(s: &str) -> SystemTime {
    let n = |from: usize, len: usize| -> i64 { s[from..from + len].parse().unwrap() };
    let (y, m, d) = (n(0, 4), n(4, 2), n(6, 2));
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(9, 2) * 3600 + n(11, 2) * 60 + n(13, 2);
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}

/// A temporary directory of its own for one test, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "polyrelay-aws-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn file(&self, name: &str, text: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
