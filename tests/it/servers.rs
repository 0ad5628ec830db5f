//! Real servers the tests need, started here when not given, stopped by PID.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key and secret the test S3 server checks (SigV4).
pub const S3_ACCESS_KEY: &str = "test";
pub const S3_SECRET_KEY: &str = "testtest";
/// The bucket the tests use.
pub const S3_BUCKET: &str = "lake";

/// An S3-protocol server (`s3s-fs`) over a temporary folder, stopped when dropped.
/// Buckets: [`S3_BUCKET`], and `badcreds`, which tests reach with a wrong secret.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn find_s3s_fs() -> PathBuf {
    if let Some(path) = std::env::var_os("QUARRY_S3S_FS") {
        return PathBuf::from(path);
    }
    let cargo_bin = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/s3s-fs"));
    match cargo_bin {
        Some(path) if path.exists() => path,
        _ => PathBuf::from("s3s-fs"),
    }
}

impl S3Server {
    /// Starts `s3s-fs` on a free loopback port with bucket [`S3_BUCKET`].
    pub fn start() -> S3Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        for bucket in [S3_BUCKET, "badcreds"] {
            std::fs::create_dir_all(root.join(bucket)).expect("bucket folder");
        }
        let port = free_port();
        let binary = find_s3s_fs();
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); install it with `cargo install s3s-fs@0.14.1 --features binary --locked` \
                     (.ci/run does) or set QUARRY_S3S_FS",
                    binary.display()
                )
            });
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
