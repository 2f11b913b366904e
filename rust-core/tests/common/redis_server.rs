//! A real redis-server for the backplane's tests: each test starts its own on a free
//! port, without persistence, and it is killed when the value is dropped. `make
//! test-rust` installs redis-server when the machine lacks it (tests/install-system-packages.sh).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server child process.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

/// A TCP port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

impl RedisServer {
    /// Starts redis-server on a free port and waits until it answers.
    pub fn start() -> RedisServer {
        RedisServer::start_on(free_port())
    }

    /// Starts redis-server on `port` (again, after `kill`) and waits until it answers.
    pub fn start_on(port: u16) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server ({e}); `make redis-server` installs it"));
        let server = RedisServer { child: Some(child), port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answered = server
                .try_connection()
                .is_some_and(|mut c| redis::cmd("PING").query::<String>(&mut c).is_ok());
            if answered {
                return server;
            }
            assert!(Instant::now() < deadline, "redis-server on port {port} did not answer within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The URL a server's `backplane` option takes.
    pub fn url(&self) -> String {
        url_of(self.port)
    }

    fn try_connection(&self) -> Option<redis::Connection> {
        let client = redis::Client::open(self.url()).ok()?;
        client.get_connection_with_timeout(Duration::from_secs(2)).ok()
    }

    /// A plain connection, for the test's own commands.
    pub fn connection(&self) -> redis::Connection {
        self.try_connection().expect("connect to redis-server")
    }

    /// The channels with at least one subscriber that match `pattern`, sorted.
    pub fn channels(&self, pattern: &str) -> Vec<Vec<u8>> {
        let mut channels: Vec<Vec<u8>> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg(pattern)
            .query(&mut self.connection())
            .expect("PUBSUB CHANNELS");
        channels.sort();
        channels
    }

    /// The number of connections subscribed to `channel`.
    pub fn subscribers(&self, channel: &[u8]) -> usize {
        let counts: Vec<(Vec<u8>, usize)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query(&mut self.connection())
            .expect("PUBSUB NUMSUB");
        counts.first().map_or(0, |(_, n)| *n)
    }

    /// PUBLISHes raw bytes into `channel`.
    pub fn publish(&self, channel: &[u8], message: &[u8]) {
        let _: usize =
            redis::cmd("PUBLISH").arg(channel).arg(message).query(&mut self.connection()).expect("PUBLISH");
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.child.as_ref().expect("running").id() as libc::pid_t;
        // SAFETY: a plain system call on our own child process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill({pid}, {signal})");
    }

    /// Stops the process (SIGSTOP): its sockets stay open, and nothing is answered.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Resumes a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Kills the process (SIGKILL) and reaps it; the port can be started on again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The backplane URL of a Redis on 127.0.0.1:`port`.
pub fn url_of(port: u16) -> String {
    format!("redis://127.0.0.1:{port}/0")
}
