//! Running the real `client-credentials` binary with a clean environment, bounded in time.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one invocation may take before the test fails.
pub(crate) const RUN_LIMIT: Duration = Duration::from_secs(30);

/// The binary under test.
pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_client-credentials")
}

/// A directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "cc-cli-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One invocation: a clean environment (no `CC_*` from the developer's shell), its own HOME
/// and XDG_CACHE_HOME.
pub(crate) struct Cli {
    command: Command,
    stdin: Option<Vec<u8>>,
    pub(crate) home: TempDir,
}

/// What an invocation did.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {self:?}"))
    }

    /// The JSON `error` object.
    pub(crate) fn error(&self) -> serde_json::Value {
        let v = self.json();
        assert!(v["error"].is_object(), "no error object: {self:?}");
        v["error"].clone()
    }

    pub(crate) fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        self
    }

    /// Neither stream holds `needle` (nor its form-encoding).
    pub(crate) fn assert_hides(&self, needle: &str) -> &Self {
        let encoded: String = form_urlencoded_encode(needle);
        for text in [&self.stdout, &self.stderr] {
            assert!(!text.contains(needle), "leaked {needle:?}: {self:?}");
            assert!(!text.contains(&encoded), "leaked {encoded:?}: {self:?}");
        }
        self
    }

    /// stderr is exactly one line.
    pub(crate) fn assert_one_line_error(&self) -> &Self {
        assert_eq!(self.stderr.lines().count(), 1, "stderr: {self:?}");
        assert!(
            self.stderr.starts_with("client-credentials: error: "),
            "{self:?}"
        );
        self
    }
}

fn form_urlencoded_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Cli {
    pub(crate) fn new() -> Self {
        Self::with_home(TempDir::new("home"))
    }

    /// Another invocation sharing `home` (and so the cache) with an earlier one.
    pub(crate) fn with_home(home: TempDir) -> Self {
        let mut command = Command::new(bin());
        command
            .env_clear()
            .env("HOME", home.path())
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        Self {
            command,
            stdin: None,
            home,
        }
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub(crate) fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    pub(crate) fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.as_bytes().to_vec());
        self.command.stdin(Stdio::piped());
        self
    }

    /// The cache directory of this invocation's HOME.
    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.home.path().join("cache").join("client-credentials")
    }

    /// Runs to completion (at most [`RUN_LIMIT`]) and hands back the HOME for reuse.
    pub(crate) fn run(mut self) -> (Run, TempDir) {
        let mut child = self.command.spawn().unwrap();
        if let Some(input) = self.stdin.take() {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(&input).unwrap();
        }
        let run = wait(child, RUN_LIMIT);
        (run, self.home)
    }

    /// Runs and drops the HOME.
    pub(crate) fn output(self) -> Run {
        self.run().0
    }
}

/// Waits for `child` to end, reading its output; kills it and fails after `limit`.
pub(crate) fn wait(mut child: Child, limit: Duration) -> Run {
    fn reader(stream: Option<impl std::io::Read + Send + 'static>) -> JoinHandle<String> {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_string(&mut s);
            }
            s
        })
    }
    let out_reader = reader(child.stdout.take());
    let err_reader = reader(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the binary ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}
