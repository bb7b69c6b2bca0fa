//! A real `redis-server` per test, on a free loopback port, stopped by its process id: started,
//! killed, frozen (SIGSTOP, a server that no longer answers), thawed, restarted empty.
//!
//! When `redis-server` is not installed the tests that need one skip, saying so, unless
//! `POLYRELAY_REQUIRE_REDIS=1` (as `.ci/run` sets it): then they fail, so a green run cannot
//! hide a missing install.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// One `redis-server` process.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl RedisServer {
    /// Starts a server on a free port, or `None` (with a message) when `redis-server` is
    /// missing and not required.
    pub fn start() -> Option<RedisServer> {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("polyrelay-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
        };
        match server.spawn() {
            Ok(()) => Some(server),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let required = std::env::var("POLYRELAY_REQUIRE_REDIS").is_ok_and(|v| v == "1");
                assert!(
                    !required,
                    "POLYRELAY_REQUIRE_REDIS=1 but redis-server is not installed: {e}"
                );
                eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
                None
            }
            Err(e) => panic!("redis-server did not start: {e}"),
        }
    }

    /// Starts the process on this server's port and waits for its "ready" line.
    fn spawn(&mut self) -> std::io::Result<()> {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--logfile", ""])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        // The explicit signal: the server logs this line once it accepts connections.
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("Ready to accept connections"));
        assert!(ready, "redis-server exited before it was ready");
        // Keep draining its log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        self.child = Some(child);
        Ok(())
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// SIGKILL: the server is gone, with its data.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn().expect("redis-server restarts");
    }

    /// SIGSTOP: the connection stays open and nothing answers (a partition, seen from the
    /// client).
    pub fn freeze(&self) {
        // SAFETY: sending a signal to our own child process by its id.
        unsafe { libc::kill(self.pid(), libc::SIGSTOP) };
    }

    /// SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        // SAFETY: as in freeze.
        unsafe { libc::kill(self.pid(), libc::SIGCONT) };
    }

    /// Runs `redis-cli` with `args` against this server, returning its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
