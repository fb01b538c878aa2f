//! The per-user token cache of `token --cache`.
//!
//! - Where: `--cache-dir` / `CC_CACHE_DIR`, else `$XDG_CACHE_HOME/client-credentials` (when
//!   absolute), else `$HOME/.cache/client-credentials`. The directory is made with mode 0700
//!   (and set to 0700 if it is wider).
//! - Which file: one per request shape, named by the SHA-256 of the token URL and the core's
//!   [`CacheKey`](client_credentials_core::CacheKey) (endpoint, client id, auth method, body
//!   format, scopes, audience, resources, extra parameters), so different clients or scopes
//!   never share an entry. The key never holds the secret, and neither does the file.
//! - What: `{"v":1,"key":"<cache key>","token":<Token::storable()>}`, mode 0600, written to a
//!   temporary file in the same directory (created exclusively, mode 0600) and renamed over
//!   the old one, so a reader sees the old entry or the new one, never half of one.
//! - When: a token that expires within `--min-validity` (or has no expiry, or whose type the
//!   current flags do not accept) is not used. A file that cannot be read, does not parse,
//!   names another key, is not a regular file or is readable by others is ignored and replaced
//!   by the next fetch; it is never an error.
//! - Races: two invocations that miss at once both fetch, and the last rename wins. Both tokens
//!   are valid; nothing is locked.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use client_credentials_core::{Policy, StoredTokenProblem, Token, TokenRequest};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The directory name under the user's cache directory.
const APP_DIR: &str = "client-credentials";

/// A cache file larger than this is not a token: it is ignored.
const MAX_FILE: u64 = 2 * 1024 * 1024;

/// A stored token issued this far in the future means the clock moved back or the file was
/// edited: it is ignored.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// An opened cache directory.
pub(crate) struct Cache {
    dir: PathBuf,
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// A token valid for at least the minimum validity.
    Hit(Token),
    /// No entry.
    Miss,
    /// An entry that expires too soon.
    Expiring,
    /// An entry that cannot be used, and why; the next store replaces it.
    Ignored(String),
}

#[derive(Serialize)]
struct EntryOut<'a> {
    v: u32,
    key: &'a str,
    token: client_credentials_core::StorableToken<'a>,
}

#[derive(Deserialize)]
struct EntryIn {
    v: u32,
    key: String,
    token: Token,
}

/// The cache directory that applies when none is given, if the environment names one.
pub(crate) fn default_dir() -> Option<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(xdg) = absolute("XDG_CACHE_HOME") {
        return Some(xdg.join(APP_DIR));
    }
    if let Some(home) = absolute("HOME") {
        return Some(home.join(".cache").join(APP_DIR));
    }
    absolute("LOCALAPPDATA").map(|p| p.join(APP_DIR))
}

impl Cache {
    /// Opens (creating it if needed) the cache directory, private to the user.
    ///
    /// # Errors
    /// When the directory cannot be made or made private.
    pub(crate) fn open(dir: PathBuf) -> io::Result<Self> {
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let meta = fs::metadata(&dir)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is not a directory", dir.display()),
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            if meta.permissions().mode() & 0o777 != 0o700 {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
            }
        }
        Ok(Self { dir })
    }

    /// The file of a request shape.
    pub(crate) fn path(&self, request: &TokenRequest) -> PathBuf {
        self.dir.join(format!("{}.json", digest(request)))
    }

    /// Looks up a token for `request` that stays valid for at least `min_validity`.
    pub(crate) fn load(
        &self,
        request: &TokenRequest,
        now: SystemTime,
        min_validity: Duration,
    ) -> Lookup {
        let path = self.path(request);
        let bytes = match read_private(&path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Lookup::Miss,
            Err(why) => return Lookup::Ignored(why),
        };
        let entry: EntryIn = match serde_json::from_slice(&bytes) {
            Ok(entry) => entry,
            Err(e) => return Lookup::Ignored(format!("not a cache entry ({e})")),
        };
        if entry.v != 1 {
            return Lookup::Ignored(format!("unknown cache entry version {}", entry.v));
        }
        if entry.key != request.cache_key().as_str() {
            return Lookup::Ignored("the entry belongs to another request".to_owned());
        }
        let token = entry.token;
        // The core's one rule for stored tokens (type, expiry, lifetime cap, usable life),
        // with `--min-validity` as the margin; then the exact window below.
        let mut policy = Policy::default();
        policy.expiry_margin = min_validity;
        match request.config().check_stored(&policy, now, &token) {
            Ok(()) => {}
            Err(StoredTokenProblem::Expired) => return Lookup::Expiring,
            Err(problem) => return Lookup::Ignored(format!("the entry is not usable: {problem}")),
        }
        if token.expires_at().is_none() {
            return Lookup::Ignored("the entry has no expiry".to_owned());
        }
        if now
            .checked_add(MAX_CLOCK_SKEW)
            .is_none_or(|limit| token.issued_at() > limit)
        {
            return Lookup::Ignored("the entry was issued in the future".to_owned());
        }
        if token.expires_within(now, min_validity) {
            return Lookup::Expiring;
        }
        Lookup::Hit(token)
    }

    /// Stores `token` for `request`, atomically. Tokens without an expiry are not stored.
    ///
    /// # Errors
    /// When the file cannot be written; the old entry, if any, is left as it was.
    pub(crate) fn store(&self, request: &TokenRequest, token: &Token) -> io::Result<()> {
        if token.expires_at().is_none() {
            return Ok(());
        }
        let entry = EntryOut {
            v: 1,
            key: request.cache_key().as_str(),
            token: token.storable(),
        };
        let bytes = Zeroizing::new(serde_json::to_vec(&entry).map_err(io::Error::other)?);
        let path = self.path(request);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("entry.json");
        let temp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let result = write_new(&temp, &bytes).and_then(|()| fs::rename(&temp, &path));
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }
}

/// The file name of a request shape: SHA-256 over a domain tag, the token URL and the core's
/// cache key, in hex.
fn digest(request: &TokenRequest) -> String {
    let mut hash = Sha256::new();
    hash.update(b"client-credentials-cli token cache v1\n");
    hash.update(request.config().token_url().to_string().as_bytes());
    hash.update(b"\n");
    hash.update(request.cache_key().as_str().as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a cache file: `None` when there is none, an error (a reason to ignore it) when it
/// is not a private regular file of a plausible size.
fn read_private(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot inspect it ({e})")),
    };
    if !meta.file_type().is_file() {
        return Err("not a regular file".to_owned());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err("readable by other users".to_owned());
        }
    }
    if meta.len() > MAX_FILE {
        return Err("too large".to_owned());
    }
    let mut bytes = Zeroizing::new(Vec::new());
    fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read it ({e})"))?;
    Ok(Some(bytes))
}

/// Writes `bytes` to a new file with mode 0600 (an old temporary file of a crashed run with
/// the same process id is removed first).
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let open = || {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path)
    };
    let mut file = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            open()?
        }
        other => other?,
    };
    file.write_all(bytes)?;
    file.sync_all()
}
