//! Project automation: `cargo xtask test` runs the whole test suite on a fresh machine,
//! installing and starting by itself what the tests need.
//!
//! Steps of `cargo xtask test`:
//! 1. install what the external-server tests need when it is missing (the npm packages of
//!    the interop server under `tests/interop`, Debian's `redis-server`);
//! 2. `cargo test --workspace --all-features -- --include-ignored`: the hermetic tests and the
//!    ignored ones that need those servers (each test starts its own server on 127.0.0.1);
//! 3. build the fuzz targets with the stable toolchain and run each one for a short smoke
//!    period over its committed seed corpus;
//! 4. `cargo bench --workspace --all-features --benches -- --test`: every benchmark runs once
//!    in test mode (nothing is timed), so that a bench that panics fails the suite.
//!
//! `cargo xtask fuzz <target> [seconds] [--runs N] [--corpus DIR] [--sanitizer none]` runs one
//! fuzz target for longer; `cargo xtask fuzz-min <target> [DIR...]` minimises its committed
//! corpus together with the corpora of such runs.

#![allow(clippy::print_stderr)] // a command-line tool: progress and errors go to stderr

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("fuzz") => match FuzzArgs::parse(&args[1..]) {
            Ok(a) => fuzz_build(a.sanitizer).and_then(|dir| fuzz_run_with(&dir, &a)),
            Err(e) => Err(e),
        },
        Some("fuzz-min") => match args.get(1) {
            Some(target) => fuzz_build(Sanitizer::Address)
                .and_then(|dir| fuzz_minimise(&dir, target, &args[2..])),
            None => Err("usage: cargo xtask fuzz-min <target> [corpus dir...]".to_owned()),
        },
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask test [--skip-fuzz] \
    | cargo xtask fuzz <target> [seconds] [--runs N] [--corpus DIR] [--sanitizer address|none] \
    | cargo xtask fuzz-min <target> [corpus dir...]";

/// `cargo xtask fuzz <target> [seconds] [--runs N] [--corpus DIR]`: a run ends after
/// `seconds` (60 by default) or `N` executions, whichever comes first. With `--corpus`, the
/// run grows `DIR` (kept, for a campaign in several sittings and for `fuzz-min`) instead of a
/// scratch copy of the seeds. `--sanitizer none` builds without AddressSanitizer (as
/// cargo-fuzz's `-s none`): the core forbids `unsafe`, so ASan finds nothing there that the
/// Rust checks miss, and a campaign runs several times as many executions in the same time.
struct FuzzArgs {
    target: String,
    secs: u64,
    runs: Option<u64>,
    corpus: Option<PathBuf>,
    sanitizer: Sanitizer,
}

/// Which sanitizer the fuzz targets are built with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sanitizer {
    /// AddressSanitizer, cargo-fuzz's default; the suite's smoke run uses it.
    Address,
    /// Coverage instrumentation only.
    None,
}

impl Sanitizer {
    /// The build's target directory under `fuzz/`, one per sanitizer so that neither build
    /// overwrites the other's binaries.
    fn target_dir(self, fuzz: &Path) -> PathBuf {
        match self {
            Self::Address => fuzz.join("target"),
            Self::None => fuzz.join("target").join("sanitizer-none"),
        }
    }
}

impl FuzzArgs {
    fn parse(args: &[String]) -> Result<Self> {
        let usage = || {
            "usage: cargo xtask fuzz <target> [seconds] [--runs N] [--corpus DIR] \
             [--sanitizer address|none]"
                .to_owned()
        };
        let mut it = args.iter();
        let target = it.next().ok_or_else(usage)?.clone();
        let mut out = Self {
            target,
            secs: 60,
            runs: None,
            corpus: None,
            sanitizer: Sanitizer::Address,
        };
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--runs" => {
                    out.runs = Some(it.next().and_then(|n| n.parse().ok()).ok_or_else(usage)?)
                }
                "--corpus" => out.corpus = Some(PathBuf::from(it.next().ok_or_else(usage)?)),
                "--sanitizer" => {
                    out.sanitizer = match it.next().map(String::as_str) {
                        Some("address") => Sanitizer::Address,
                        Some("none") => Sanitizer::None,
                        _ => return Err(usage()),
                    }
                }
                secs => out.secs = secs.parse().map_err(|_| usage())?,
            }
        }
        Ok(out)
    }
}

/// Seconds each fuzz target runs in the suite.
const FUZZ_SMOKE_SECS: u64 = 10;

/// The workspace root. `cargo run` sets `CARGO_MANIFEST_DIR` when it starts the binary, so
/// that one is read first: the compile-time value names whichever checkout the binary was
/// built in, which a target directory copied from another worktree would share (it then
/// looks fresh to cargo and builds there).
fn root() -> PathBuf {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn test(args: &[String]) -> Result {
    let started = Instant::now();
    let root = root();
    step("install test dependencies", || install(&root))?;
    step("cargo test (all features, including ignored tests)", || {
        run(Command::new(cargo()).current_dir(&root).args([
            "test",
            "--workspace",
            "--all-features",
            "--",
            "--include-ignored",
        ]))
    })?;
    if !args.iter().any(|a| a == "--skip-fuzz") {
        step("fuzz smoke run", || {
            let dir = fuzz_build(Sanitizer::Address)?;
            for target in fuzz_targets(&dir)? {
                fuzz_run(&dir, &target, FUZZ_SMOKE_SECS)?;
            }
            Ok(())
        })?;
    }
    if has_benches(&root) {
        // Each bench once in criterion's test mode (every routine runs, nothing is timed;
        // the stampede benches only check that they start), so a bench that panics fails
        // the suite.
        step("cargo bench -- --test", || {
            run(Command::new(cargo()).current_dir(&root).args([
                "bench",
                "--workspace",
                "--all-features",
                "--benches",
                "--",
                "--test",
            ]))
        })?;
    }
    eprintln!("xtask: whole suite passed in {:.0?}", started.elapsed());
    Ok(())
}

fn step(name: &str, f: impl FnOnce() -> Result) -> Result {
    eprintln!("\n==> {name}");
    let t = Instant::now();
    f().map_err(|e| format!("{name}: {e}"))?;
    eprintln!("==> {name}: done in {:.1?}", t.elapsed());
    Ok(())
}

fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn run(cmd: &mut Command) -> Result {
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs what the ignored tests need, when it is missing.
fn install(root: &Path) -> Result {
    let interop = root.join("tests").join("interop");
    if interop.join("package.json").exists() {
        if !have("npm") {
            apt_install(&["nodejs", "npm"])?;
        }
        if !interop.join("node_modules").exists() {
            let sub = if interop.join("package-lock.json").exists() {
                "ci"
            } else {
                "install"
            };
            run(Command::new("npm").current_dir(&interop).args([
                sub,
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ]))?;
        }
    }
    if root
        .join("crates")
        .join("client-credentials-redis")
        .exists()
        && !have("redis-server")
    {
        apt_install(&["redis-server"])?;
    }
    Ok(())
}

fn apt_install(packages: &[&str]) -> Result {
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let mut update = Command::new(sudo.first().copied().unwrap_or("apt-get"));
    if !sudo.is_empty() {
        update.arg("apt-get");
    }
    run(update.args(["update", "-qq"]))?;
    let mut install = Command::new(sudo.first().copied().unwrap_or("apt-get"));
    if !sudo.is_empty() {
        install.arg("apt-get");
    }
    run(install
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn has_benches(root: &Path) -> bool {
    let crates = root.join("crates");
    std::fs::read_dir(&crates)
        .map(|entries| {
            entries
                .filter_map(std::result::Result::ok)
                .any(|e| e.path().join("benches").is_dir())
        })
        .unwrap_or(false)
        || root.join("benches").is_dir()
}

/// The flags that cargo-fuzz passes, so that the fuzz targets build with the stable
/// toolchain (`RUSTC_BOOTSTRAP=1` unlocks the sanitizer flag) without installing cargo-fuzz.
const FUZZ_RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// Builds every fuzz target; returns the fuzz crate's directory.
fn fuzz_build(sanitizer: Sanitizer) -> Result<PathBuf> {
    let dir = root().join("fuzz");
    if !dir.join("Cargo.toml").exists() {
        return Err("no fuzz/Cargo.toml".to_owned());
    }
    run(Command::new(cargo())
        .current_dir(&dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env(
            "RUSTFLAGS",
            match sanitizer {
                Sanitizer::Address => format!("{FUZZ_RUSTFLAGS} -Zsanitizer=address"),
                Sanitizer::None => FUZZ_RUSTFLAGS.to_owned(),
            },
        )
        .env("CARGO_TARGET_DIR", sanitizer.target_dir(&dir))
        .args([
            "build",
            "--release",
            "--bins",
            "--target",
            host_triple()?.as_str(),
        ]))?;
    Ok(dir)
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .ok_or_else(|| "rustc -vV printed no host".to_owned())
}

fn fuzz_targets(dir: &Path) -> Result<Vec<String>> {
    let mut targets: Vec<String> = std::fs::read_dir(dir.join("fuzz_targets"))
        .map_err(|e| format!("fuzz/fuzz_targets: {e}"))?
        .filter_map(std::result::Result::ok)
        .filter_map(|e| {
            e.path()
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_owned)
        })
        .collect();
    targets.sort();
    Ok(targets)
}

/// Runs one target for `secs` seconds over a scratch copy of its committed seed corpus (so the
/// run never adds files to the repository). A crash fails the run.
fn fuzz_run(dir: &Path, target: &str, secs: u64) -> Result {
    fuzz_run_with(
        dir,
        &FuzzArgs {
            target: target.to_owned(),
            secs,
            runs: None,
            corpus: None,
            sanitizer: Sanitizer::Address,
        },
    )
}

fn fuzz_binary(dir: &Path, target: &str, sanitizer: Sanitizer) -> Result<PathBuf> {
    Ok(sanitizer
        .target_dir(dir)
        .join(host_triple()?)
        .join("release")
        .join(target))
}

/// [`fuzz_run`] with an execution limit and a kept corpus, when asked.
fn fuzz_run_with(dir: &Path, args: &FuzzArgs) -> Result {
    let target = args.target.as_str();
    let binary = fuzz_binary(dir, target, args.sanitizer)?;
    let scratch = env::temp_dir().join(format!("cc-fuzz-{target}-{}", std::process::id()));
    let corpus = args.corpus.clone().unwrap_or_else(|| scratch.clone());
    if args.corpus.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let seeds = dir.join("corpus").join(target);
    let artifacts = dir.join("artifacts").join(target);
    std::fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
    let mut cmd = Command::new(&binary);
    cmd.arg(&corpus);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    if let Some(runs) = args.runs {
        cmd.arg(format!("-runs={runs}"));
    }
    let result = run(cmd
        .arg(format!("-max_total_time={}", args.secs))
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display())));
    if args.corpus.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result
}

/// Minimises the committed seed corpus of `target` together with the corpora in `extra`
/// (libFuzzer's `-merge=1`: the smallest set of inputs with the same coverage), and makes the
/// result the committed corpus.
fn fuzz_minimise(dir: &Path, target: &str, extra: &[String]) -> Result {
    let binary = fuzz_binary(dir, target, Sanitizer::Address)?;
    let seeds = dir.join("corpus").join(target);
    let merged = dir.join("corpus").join(format!(".{target}.merged"));
    let _ = std::fs::remove_dir_all(&merged);
    std::fs::create_dir_all(&merged).map_err(|e| format!("{}: {e}", merged.display()))?;
    let mut cmd = Command::new(&binary);
    cmd.arg("-merge=1").arg(&merged);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    run(cmd.args(extra))?;
    let _ = std::fs::remove_dir_all(&seeds);
    std::fs::rename(&merged, &seeds).map_err(|e| format!("{}: {e}", seeds.display()))
}
