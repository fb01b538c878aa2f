//! `client-credentials token --cache`: reuse across invocations, keyed by the request shape,
//! private files without the secret, recovery from a corrupt file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use client_credentials_testkit::{Reply, TestServer, TokenEndpoint};
use common::{Cli, Run, TempDir};

const ID: &str = "svc";
const SECRET: &str = "cache-test-secret-value";

/// `token --cache` with this HOME.
fn token(server: &TestServer, home: TempDir) -> Cli {
    Cli::with_home(home)
        .args(["token", "--cache"])
        .env("CC_TOKEN_URL", server.url("/token"))
        .env("CC_CLIENT_ID", ID)
        .env("CC_CLIENT_SECRET", SECRET)
}

fn run(cli: Cli) -> (Run, TempDir) {
    let (run, home) = cli.run();
    run.assert_code(0).assert_hides(SECRET);
    (run, home)
}

fn cache_files(home: &TempDir) -> Vec<PathBuf> {
    let dir = home.path().join("cache").join("client-credentials");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_second_invocation_does_not_reach_the_server() {
    let server = TestServer::start(TokenEndpoint::new().client(ID, SECRET));
    let (first, home) = run(token(&server, TempDir::new("home")).args(["--json"]));
    assert_eq!(first.json()["from_cache"], false);
    let (second, home) = run(token(&server, home).args(["--json"]));
    assert_eq!(server.count("/token"), 1);
    let v = second.json();
    assert_eq!(v["from_cache"], true);
    assert_eq!(v["access_token"], "token-1");
    assert_eq!(v["expires_at"], first.json()["expires_at"]);
    // The bare form too.
    let (third, _home) = run(token(&server, home));
    assert_eq!(third.stdout, "token-1\n");
    assert_eq!(server.count("/token"), 1);
}

#[test]
fn the_cache_can_be_switched_on_by_the_environment() {
    let server = TestServer::start(TokenEndpoint::new());
    let base = |home| {
        Cli::with_home(home)
            .args(["token"])
            .env("CC_TOKEN_URL", server.url("/token"))
            .env("CC_CLIENT_ID", ID)
            .env("CC_CLIENT_SECRET", SECRET)
            .env("CC_CACHE", "1")
    };
    let (_, home) = run(base(TempDir::new("home")));
    let (_, home) = run(base(home));
    assert_eq!(server.count("/token"), 1);
    let (_, _) = run(base(home).env("CC_CACHE", "false"));
    assert_eq!(server.count("/token"), 2, "CC_CACHE=false does not cache");
}

#[test]
fn another_scope_or_client_or_endpoint_is_another_entry() {
    let server = TestServer::start(TokenEndpoint::new());
    let other = TestServer::start(TokenEndpoint::new().prefix("other-"));
    let (_, home) = run(token(&server, TempDir::new("home")).args(["--scope", "read"]));
    let (_, home) = run(token(&server, home).args(["--scope", "read"]));
    assert_eq!(server.count("/token"), 1);

    let (r, home) = run(token(&server, home).args(["--scope", "write"]));
    assert_eq!(server.count("/token"), 2, "another scope");
    assert_eq!(r.stdout, "token-2\n");

    let (r, home) = run(token(&server, home)
        .args(["--scope", "read"])
        .env("CC_CLIENT_ID", "another-client"));
    assert_eq!(server.count("/token"), 3, "another client");
    assert_eq!(r.stdout, "token-3\n");

    let (r, home) = run(token(&server, home).args(["--scope", "read", "--audience", "x"]));
    assert_eq!(server.count("/token"), 4, "another audience");
    assert_eq!(r.stdout, "token-4\n");

    let (r, home) = run(token(&server, home)
        .args(["--scope", "read"])
        .env("CC_TOKEN_URL", other.url("/token")));
    assert_eq!(r.stdout, "other-1\n", "another endpoint");

    // The first shape is still cached, and scope order does not matter.
    let (r, home) = run(token(&server, home).args(["--scope", "read"]));
    assert_eq!(r.stdout, "token-1\n");
    let (_, home) = run(token(&server, home).args(["--scope", "b a"]));
    let (_, home) = run(token(&server, home).args(["--scope", "a b"]));
    assert_eq!(server.count("/token"), 5);
    assert_eq!(cache_files(&home).len(), 6);
}

#[cfg(unix)]
#[test]
fn cache_files_are_private_and_hold_no_secret() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = TestServer::start(TokenEndpoint::new().client(ID, SECRET));
    let (_, home) = run(token(&server, TempDir::new("home")));
    let dir = home.path().join("cache").join("client-credentials");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let files = cache_files(&home);
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    assert_eq!(mode(file), 0o600);
    assert!(file.extension().is_some_and(|e| e == "json"));
    let text = std::fs::read_to_string(file).unwrap();
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("token-1"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["v"], 1);
    assert!(v["key"].as_str().unwrap().contains(ID));

    // A directory that others can read is made private again.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, home) = run(token(&server, home));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(server.count("/token"), 1);

    // A cache file that others can read is not trusted: fetched again and replaced.
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (r, home) = run(token(&server, home));
    assert_eq!(r.stdout, "token-2\n");
    assert_eq!(mode(&cache_files(&home)[0]), 0o600);
}

#[test]
fn a_corrupt_cache_file_is_replaced_not_an_error() {
    let server = TestServer::start(TokenEndpoint::new());
    let (_, home) = run(token(&server, TempDir::new("home")));
    let file = cache_files(&home).pop().unwrap();
    for garbage in [
        &b"{not json"[..],
        b"",
        b"\xff\xfe\x00garbage",
        br#"{"v":1,"key":"another","token":{}}"#,
        br#"{"v":2}"#,
    ] {
        std::fs::write(&file, garbage).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let before = server.count("/token");
        let (r, h) = run(token(&server, TempDir::new("unused"))
            .args(["--cache-dir"])
            .args([file.parent().unwrap()]));
        drop(h);
        assert_eq!(r.stderr, "", "a corrupt file is not worth a message: {r:?}");
        assert_eq!(server.count("/token"), before + 1);
        let text = std::fs::read(&file).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["v"], 1);
    }
    // The repaired entry is used again.
    let before = server.count("/token");
    run(token(&server, home));
    assert_eq!(server.count("/token"), before);
}

#[test]
fn a_token_near_expiry_is_fetched_again() {
    // 30-second tokens: inside the default 60-second minimum validity.
    let server = TestServer::start(TokenEndpoint::new().lifetime(Duration::from_secs(30)));
    let (_, home) = run(token(&server, TempDir::new("home")));
    let (r, home) = run(token(&server, home));
    assert_eq!(r.stdout, "token-2\n");
    // With a smaller minimum, the cached one will do.
    let (r, _) = run(token(&server, home).args(["--min-validity", "10s"]));
    assert_eq!(r.stdout, "token-2\n");
    assert_eq!(server.count("/token"), 2);
}

#[test]
fn refresh_fetches_and_replaces_the_cached_token() {
    let server = TestServer::start(TokenEndpoint::new());
    let (_, home) = run(token(&server, TempDir::new("home")));
    let (r, home) = run(token(&server, home).args(["--refresh"]));
    assert_eq!(r.stdout, "token-2\n");
    let (r, _) = run(token(&server, home));
    assert_eq!(r.stdout, "token-2\n");
    assert_eq!(server.count("/token"), 2);
}

#[test]
fn failures_are_not_cached_and_do_not_touch_the_entry() {
    let server = TestServer::start(TokenEndpoint::new().client(ID, SECRET));
    let (_, home) = run(token(&server, TempDir::new("home")).args(["--scope", "a"]));
    let (r, home) = token(&server, home)
        .args(["--scope", "b"])
        .env("CC_CLIENT_SECRET", "wrong-secret-value")
        .run();
    r.assert_code(3);
    assert_eq!(cache_files(&home).len(), 1);
    let (r, _) = run(token(&server, home).args(["--scope", "a"]));
    assert_eq!(r.stdout, "token-1\n");
}

#[test]
fn an_unusable_cache_directory_is_a_warning_not_a_failure() {
    let server = TestServer::start(Reply::token("tok", Some(Duration::from_secs(600))));
    let dir = TempDir::new("blocked");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let (r, _) = token(&server, TempDir::new("home"))
        .args(["--cache-dir"])
        .args([blocker.join("sub")])
        .run();
    r.assert_code(0);
    assert_eq!(r.stdout, "tok\n");
    assert!(r.stderr.contains("warning"), "{r:?}");
}

#[test]
fn verbose_says_where_the_token_came_from() {
    let server = TestServer::start(TokenEndpoint::new());
    let (r, home) = run(token(&server, TempDir::new("home")).args(["-v"]));
    assert!(r.stderr.contains("no cached token"), "{r:?}");
    assert!(r.stderr.contains("stored the token"), "{r:?}");
    let (r, _) = run(token(&server, home).args(["-v"]));
    assert!(r.stderr.contains("using the cached token"), "{r:?}");
}

#[test]
fn a_cached_token_of_a_type_no_longer_accepted_is_not_used() {
    let server = TestServer::start(Reply::json(
        200,
        &serde_json::json!({"access_token": "dpop-tok", "token_type": "DPoP", "expires_in": 600}),
    ));
    let (r, home) = run(token(&server, TempDir::new("home")).args(["--accept-token-type", "DPoP"]));
    assert_eq!(r.stdout, "dpop-tok\n");
    let (r, home) = token(&server, home).run();
    r.assert_code(5);
    assert_eq!(server.count("/token"), 2);
    let (r, _) = run(token(&server, home).args(["--accept-token-type", "dpop"]));
    assert_eq!(r.stdout, "dpop-tok\n");
    assert_eq!(
        server.count("/token"),
        2,
        "the entry is still there for the right flags"
    );
}
