//! Name resolution for the default agent: bounded in time without a thread per request.
//!
//! ureq's own resolver bounds a lookup by running it on a new thread whenever a timeout
//! applies, and the client always sets one. That thread is spawned for every request, even
//! to an IP address and even on a pooled connection (ureq resolves before it looks in its
//! pool), and a lookup that hangs leaves its thread behind. This resolver:
//!
//! - answers an IP address (`127.0.0.1`, `[::1]`) at once, on the caller's thread, with no
//!   system call;
//! - hands a name to a small pool of long-lived lookup threads (at most [`MAX_WORKERS`]
//!   per agent, started when first needed, ended with the agent) and waits for the answer
//!   no longer than ureq's remaining timeout, so a lookup is bounded by the same deadline as
//!   the rest of the request; a lookup whose caller has given up is skipped, so a hung
//!   system resolver ties up at most those threads, never more.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Instant;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Lookup threads per agent: enough for concurrent lookups of a few hosts (the token
/// endpoint, a proxy, resource servers), few enough that a hung resolver costs little.
pub(crate) const MAX_WORKERS: usize = 4;

/// One name to look up, and where the answer goes.
struct Job {
    host_port: String,
    deadline: Instant,
    reply: SyncSender<std::io::Result<Vec<SocketAddr>>>,
}

/// The agent's resolver (see the module docs).
pub(crate) struct BoundedResolver {
    pool: Mutex<Pool>,
}

struct Pool {
    jobs: Sender<Job>,
    queue: Arc<Mutex<Receiver<Job>>>,
    workers: usize,
    /// Jobs queued or being looked up, shared with the workers (who count them down before
    /// they answer, so a caller that got its answer never counts its own job).
    busy: Arc<AtomicUsize>,
}

impl BoundedResolver {
    pub(crate) fn new() -> Self {
        let (jobs, queue) = mpsc::channel();
        Self {
            pool: Mutex::new(Pool {
                jobs,
                queue: Arc::new(Mutex::new(queue)),
                workers: 0,
                busy: Arc::default(),
            }),
        }
    }

    /// Queues `job`, starting a worker if every worker is busy and the pool is not full.
    fn submit(&self, job: Job) -> Result<(), ureq::Error> {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.busy.load(Ordering::Acquire) >= pool.workers && pool.workers < MAX_WORKERS {
            let queue = Arc::clone(&pool.queue);
            let busy = Arc::clone(&pool.busy);
            let spawned = thread::Builder::new()
                .name("client-credentials-resolver".to_owned())
                .stack_size(256 * 1024)
                .spawn(move || work(&queue, &busy));
            match spawned {
                Ok(_) => pool.workers += 1,
                // Queued jobs still run on the workers there are.
                Err(e) if pool.workers == 0 => return Err(ureq::Error::Io(e)),
                Err(_) => {}
            }
        }
        pool.busy.fetch_add(1, Ordering::AcqRel);
        // The receiver lives as long as the pool: a send cannot fail while `self` exists.
        pool.jobs.send(job).map_err(|_| ureq::Error::HostNotFound)
    }
}

/// A worker: takes jobs until the agent (and with it the sender) is gone.
fn work(queue: &Mutex<Receiver<Job>>, busy: &AtomicUsize) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else {
            return;
        };
        if Instant::now() >= job.deadline {
            busy.fetch_sub(1, Ordering::AcqRel);
            continue; // the caller has given up
        }
        let answer = job.host_port.to_socket_addrs().map(Iterator::collect);
        busy.fetch_sub(1, Ordering::AcqRel);
        let _ = job.reply.send(answer);
    }
}

impl Resolver for BoundedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let (host, port) = host_and_port(uri)?;
        let addrs: Vec<SocketAddr> = if let Some(ip) = ip_literal(host) {
            vec![SocketAddr::new(ip, port)]
        } else if timeout.after.is_not_happening() {
            (host, port).to_socket_addrs()?.collect()
        } else {
            let (reply, answer) = mpsc::sync_channel(1);
            let deadline = Instant::now()
                .checked_add(*timeout.after)
                .unwrap_or_else(far_future);
            self.submit(Job {
                host_port: format!("{host}:{port}"),
                deadline,
                reply,
            })?;
            match answer.recv_timeout(*timeout.after) {
                Ok(found) => found?,
                Err(RecvTimeoutError::Timeout) => return Err(ureq::Error::Timeout(timeout.reason)),
                Err(RecvTimeoutError::Disconnected) => return Err(ureq::Error::HostNotFound),
            }
        };
        let mut result = self.empty();
        for addr in config.ip_family().keep_wanted(addrs.into_iter()) {
            if result.try_push(addr).is_err() {
                break;
            }
        }
        if result.is_empty() {
            Err(ureq::Error::HostNotFound)
        } else {
            Ok(result)
        }
    }
}

/// The host and port of `uri`, with the scheme's default port.
fn host_and_port(uri: &Uri) -> Result<(&str, u16), ureq::Error> {
    let authority = uri
        .authority()
        .ok_or_else(|| ureq::Error::BadUri("the URL has no host".to_owned()))?;
    let port = match (authority.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("https")) => 443,
        (None, Some("http")) => 80,
        (None, Some("socks4" | "socks4a" | "socks5" | "socks5h")) => 1080,
        (None, _) => {
            return Err(ureq::Error::BadUri(
                "the URL has no known scheme".to_owned(),
            ));
        }
    };
    Ok((authority.host(), port))
}

/// `host` as an IP address, if it is one (`[::1]` included).
fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// A deadline beyond any lookup (`Instant` has no maximum).
fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(86_400 * 365)
}

impl fmt::Debug for BoundedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("BoundedResolver")
            .field("workers", &pool.workers)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(resolver: &BoundedResolver, url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let config = ureq::Agent::config_builder().build();
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_secs(5),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        resolver
            .resolve(&url.parse().unwrap(), &config, timeout)
            .map(|addrs| addrs.iter().copied().collect())
    }

    fn workers(resolver: &BoundedResolver) -> usize {
        resolver.pool.lock().unwrap().workers
    }

    #[test]
    fn an_ip_address_is_answered_without_a_thread() {
        let resolver = BoundedResolver::new();
        for _ in 0..20 {
            let addrs = resolve(&resolver, "http://127.0.0.1:8080/token").unwrap();
            assert_eq!(addrs, [SocketAddr::from(([127, 0, 0, 1], 8080))]);
            let v6 = resolve(&resolver, "https://[::1]/token").unwrap();
            assert_eq!(
                v6,
                [SocketAddr::from((
                    IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                    443
                ))]
            );
        }
        assert_eq!(workers(&resolver), 0);
    }

    #[test]
    fn names_share_one_long_lived_lookup_thread() {
        let resolver = BoundedResolver::new();
        for _ in 0..20 {
            let addrs = resolve(&resolver, "http://localhost:8080/token").unwrap();
            assert!(
                addrs
                    .iter()
                    .all(|a| a.ip().is_loopback() && a.port() == 8080),
                "{addrs:?}"
            );
        }
        assert_eq!(
            workers(&resolver),
            1,
            "sequential lookups reuse the first thread"
        );
    }

    #[test]
    fn concurrent_lookups_use_a_bounded_pool() {
        let resolver = BoundedResolver::new();
        thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for _ in 0..10 {
                        resolve(&resolver, "http://localhost/").unwrap();
                    }
                });
            }
        });
        let n = workers(&resolver);
        assert!((1..=MAX_WORKERS).contains(&n), "{n} workers");
    }

    #[test]
    fn an_unknown_name_is_host_not_found() {
        let resolver = BoundedResolver::new();
        let err = resolve(&resolver, "http://no-such-host.invalid/token").unwrap_err();
        assert!(
            matches!(err, ureq::Error::HostNotFound | ureq::Error::Io(_)),
            "{err:?}"
        );
    }

    #[test]
    fn ip_literals_are_recognised() {
        assert_eq!(ip_literal("127.0.0.1"), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(ip_literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(ip_literal("localhost"), None);
        assert_eq!(ip_literal("auth.example.com"), None);
    }

    #[test]
    fn default_ports_follow_the_scheme() {
        let port = |u: &str| host_and_port(&u.parse().unwrap()).map(|(_, p)| p).ok();
        assert_eq!(port("https://auth.example.com/token"), Some(443));
        assert_eq!(port("http://127.0.0.1/token"), Some(80));
        assert_eq!(port("http://127.0.0.1:8080/token"), Some(8080));
        assert_eq!(port("socks5://proxy"), Some(1080));
        assert_eq!(port("/token"), None);
    }
}
