//! A real `redis-server` per test, on a free loopback port, stopped by its process id: started,
//! killed, frozen (SIGSTOP, a server that no longer answers), thawed, restarted empty.
//!
//! `POLYRELAY_REDIS_SERVER` / `POLYRELAY_REDIS_CLI` name other binaries (`valkey-server`,
//! `valkey-cli`: `.ci/run` runs the fleet tests against Valkey too).
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
            Err(e) => missing(e),
        }
    }

    /// Starts the process on this server's port and waits for its "ready" line.
    fn spawn(&mut self) -> std::io::Result<()> {
        self.child = Some(spawn_ready(server_command(self.port, &self.dir))?);
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
        cli(self.port, args)
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

/// Three `redis-server --cluster-enabled yes` processes made one cluster (`redis-cli
/// --cluster create`, no replicas), each on a free loopback port, stopped by process id.
pub struct RedisCluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    bus: Vec<u16>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    /// Starts three nodes, creates the cluster and waits for `cluster_state:ok` on each, or
    /// `None` (with a message) when `redis-server` is missing and not required.
    pub fn start() -> Option<RedisCluster> {
        // Each node's port and its cluster bus port (`--cluster-port`: the default, port +
        // 10,000, may be past 65,535 for an ephemeral port), all distinct: the listeners are
        // held until all six are chosen.
        let held: Vec<std::net::TcpListener> = (0..6)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
            .collect();
        let all: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().expect("a bound port").port())
            .collect();
        drop(held);
        let (ports, bus) = (all[..3].to_vec(), all[3..].to_vec());
        let dir = std::env::temp_dir().join(format!(
            "polyrelay-redis-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            ports: ports.clone(),
            bus,
            dir,
        };
        for i in 0..3 {
            match cluster.spawn(i) {
                Ok(child) => cluster.nodes.push(child),
                Err(e) => return missing(e),
            }
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new(cli_binary())
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // The explicit signal: every node reports the cluster ok (all slots served, the
        // nodes agreeing). Bounded: 500 polls, 10 ms apart.
        for port in &ports {
            let ok = (0..500).any(|_| {
                let info = cli(*port, &["CLUSTER", "INFO"]);
                let ok = info.contains("cluster_state:ok");
                if !ok {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                ok
            });
            assert!(ok, "the cluster was not ok within 5 s on port {port}");
        }
        Some(cluster)
    }

    /// Starts node `i` and waits for its "ready" line.
    fn spawn(&self, i: usize) -> std::io::Result<Child> {
        let port = self.ports[i];
        let conf = self.dir.join(format!("nodes-{port}.conf"));
        let mut cmd = server_command(port, &self.dir);
        cmd.args(["--cluster-enabled", "yes", "--cluster-port"])
            .arg(self.bus[i].to_string())
            .arg("--cluster-config-file")
            .arg(&conf);
        spawn_ready(cmd)
    }

    /// Each node's `redis://127.0.0.1:<port>`.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The nodes' ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Runs `redis-cli` with `args` against the node on `port`, returning its output.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        cli(port, args)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-server` on `port` (loopback), its files in `dir`, no persistence, logging to stdout.
fn server_command(port: u16, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(server_binary());
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--logfile", ""])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

/// Starts `cmd` and waits for the server's "ready" line.
fn spawn_ready(mut cmd: Command) -> std::io::Result<Child> {
    let mut child = cmd.spawn()?;
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
    Ok(child)
}

/// `None` (skipped, saying so) when `redis-server` is not installed and not required
/// (`POLYRELAY_REQUIRE_REDIS=1`); a failure otherwise.
fn missing<T>(e: std::io::Error) -> Option<T> {
    if e.kind() != std::io::ErrorKind::NotFound {
        panic!("redis-server did not start: {e}");
    }
    let required = std::env::var("POLYRELAY_REQUIRE_REDIS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "POLYRELAY_REQUIRE_REDIS=1 but {} is not installed: {e}",
        server_binary()
    );
    eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
    None
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new(cli_binary())
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The server binary: `redis-server`, or `POLYRELAY_REDIS_SERVER` (e.g. `valkey-server`, to
/// run the same tests against Valkey).
fn server_binary() -> String {
    std::env::var("POLYRELAY_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

/// The client binary: `redis-cli`, or `POLYRELAY_REDIS_CLI` (e.g. `valkey-cli`).
fn cli_binary() -> String {
    std::env::var("POLYRELAY_REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_owned())
}
