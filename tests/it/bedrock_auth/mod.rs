//! AWS auth for Bedrock: SigV4 against the smithy-rs vectors, credential sources (SSO
//! profiles included), clock skew.

mod chain;
mod refresh;
mod sigv4;
mod skew;
mod sso;

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

/// `secs` since the epoch as RFC 3339 (`2025-01-01T00:00:00Z`), as STS, IMDS and the AWS
/// CLI's SSO cache write times.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Signs a Converse request for `us-east-1` with `auth` at the system time, fetching
/// temporary credentials through `http` when they are due.
pub async fn sign(
    auth: &polyrelay::providers::bedrock::AwsAuth,
    http: &reqwest::Client,
) -> Result<reqwest::Request, polyrelay::Error> {
    let mut request = http
        .post("https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse")
        .body("{}")
        .build()
        .unwrap();
    let params = polyrelay::providers::bedrock::auth::SigV4Params::new(
        "us-east-1",
        "bedrock",
        SystemTime::now(),
    );
    auth.sign_with(&mut request, &params, http).await?;
    Ok(request)
}

/// One request a stand-in server read: its method, path (with query) and header lines.
pub struct Head {
    pub method: String,
    pub path: String,
    text: String,
}

impl Head {
    /// The value of header `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.text.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// A stand-in HTTP/1.1 server on loopback for credential services the simulator does not
/// speak (IMDS, the SSO portal): each request's head goes to `answer`, whose status and
/// JSON body are sent back on a closing connection. Returns the base URL.
pub async fn stand_in(answer: impl Fn(&Head) -> (u16, String) + Send + 'static) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).await.unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let first: Vec<&str> = text.lines().next().unwrap_or_default().split(' ').collect();
            let head = Head {
                method: first.first().copied().unwrap_or_default().to_owned(),
                path: first.get(1).copied().unwrap_or_default().to_owned(),
                text,
            };
            let (status, body) = answer(&head);
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes()).await;
        }
    });
    url
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
