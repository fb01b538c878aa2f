//! The blocking client behind the testkit's conformance harness. Every call of the suite
//! into `client_credentials_ureq` is in this file (the facade's tests include it too).

use std::fmt;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use client_credentials_testkit::conformance::{
    Answer, Harness, HarnessError, HarnessErrorKind, HarnessOptions, Outgoing,
};
use client_credentials_ureq::core::ServerMetadata;
use client_credentials_ureq::{
    AccessToken, Client, Config, Counters, Credentials, Error, Introspection, StaticCredential,
    Token, TokenError, TokenParams,
};

/// One `client_credentials_ureq::Client`; callers are threads.
#[derive(Clone)]
pub(crate) struct UreqHarness(Client);

impl fmt::Debug for UreqHarness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn wrap(error: Error) -> HarnessError {
    let kind = match &error {
        Error::Token(_) | Error::Endpoint(_) => HarnessErrorKind::Token,
        Error::Config(_) => HarnessErrorKind::Config,
        Error::Request(_) => HarnessErrorKind::Request,
        _ => HarnessErrorKind::Other,
    };
    let config = match &error {
        Error::Config(e) => Some(e.clone()),
        _ => None,
    };
    let classes = client_credentials_testkit::classes_of!(error);
    let discovery = match &error {
        Error::Discovery(e) => Some((**e).clone()),
        _ => None,
    };
    let mut wrapped =
        HarnessError::new(kind, error.token_error().cloned(), config, error).with_classes(classes);
    if let Some(discovery) = discovery {
        wrapped = wrapped.with_discovery(discovery);
    }
    wrapped
}

impl UreqHarness {
    /// Sends `request` with a token, and reads the whole answer; returns it with the token.
    /// Sends `request` through `Client::send_authorized`, with a streaming body when it
    /// must not be replayed.
    fn send(&self, request: &Outgoing, credentials: &Credentials) -> Result<Answer, HarnessError> {
        let builder = http::Request::builder()
            .method(request.method.clone())
            .uri(&request.url);
        let sent = format!("{builder:?} {credentials:?}");
        let body = request.body.clone().unwrap_or_default();
        let agent = self.0.agent();
        let mut response = if request.replayable {
            credentials.send_authorized_with(agent, builder.body(body).unwrap())
        } else {
            let mut reader = body.as_slice();
            let body = client_credentials_ureq::ureq::SendBody::from_reader(&mut reader);
            credentials.send_authorized_with(agent, builder.body(body).unwrap())
        }
        .map_err(wrap)?;
        let debug = format!("{sent}\n{response:?}");
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .read_to_vec()
            .map_err(|e| HarnessError::new(HarnessErrorKind::Request, None, None, e))?;
        Ok(Answer {
            status: response.status().as_u16(),
            headers,
            body,
            debug,
        })
    }
}

impl Harness for UreqHarness {
    const CALLERS: usize = 64;

    fn discover(issuer: &str) -> Result<ServerMetadata, HarnessError> {
        client_credentials_ureq::discover(issuer).map_err(wrap)
    }

    fn build(config: Config, options: &HarnessOptions) -> Self {
        let mut builder = Client::builder(config);
        if let Some(policy) = &options.policy {
            builder = builder.policy(policy.clone());
        }
        if let Some(seed) = options.seed {
            builder = builder.seed(seed);
        }
        if let Some(timeout) = options.timeout {
            builder = builder.timeout(timeout);
        }
        Self(builder.build())
    }

    fn token(&self) -> Result<Arc<Token>, HarnessError> {
        self.0.token().map_err(wrap)
    }

    fn token_for(&self, params: &TokenParams) -> Result<Arc<Token>, HarnessError> {
        self.0.token_for(params).map_err(wrap)
    }

    fn concurrent_tokens(&self, callers: usize) -> Vec<Result<Arc<Token>, HarnessError>> {
        let barrier = Arc::new(Barrier::new(callers));
        let threads: Vec<_> = (0..callers)
            .map(|_| {
                let (client, barrier) = (self.0.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    client.token()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap().map_err(wrap))
            .collect()
    }

    fn invalidate(&self, rejected: &AccessToken) -> bool {
        self.0.invalidate(rejected)
    }

    fn force_refresh(&self) {
        self.0.force_refresh();
    }

    fn force_refresh_for(&self, params: &TokenParams) -> Result<(), HarnessError> {
        self.0.force_refresh_for(params).map_err(wrap)
    }

    fn counters(&self) -> Counters {
        self.0.counters()
    }

    fn counters_for(&self, params: &TokenParams) -> Result<Counters, HarnessError> {
        self.0.counters_for(params).map_err(wrap)
    }

    fn last_error(&self) -> Option<TokenError> {
        self.0.last_error()
    }

    fn cached_shapes(&self) -> usize {
        self.0.cached_shapes()
    }

    fn next_refresh(&self) -> Option<Instant> {
        self.0.next_refresh()
    }

    fn authorize(&self, request: &mut http::Request<()>) -> Result<AccessToken, HarnessError> {
        self.0.authorize(request).map_err(wrap)
    }

    fn send_authorized(&self, request: Outgoing) -> Result<Answer, HarnessError> {
        self.send(&request, &Credentials::from(self.0.clone()))
    }

    fn restore(&self, token: Token) -> Result<bool, HarnessError> {
        self.0.restore(token).map_err(wrap)
    }

    fn clear(&self) -> usize {
        self.0.clear()
    }

    fn send_static(
        &self,
        credential: &StaticCredential,
        request: Outgoing,
    ) -> Result<Answer, HarnessError> {
        self.send(&request, &Credentials::from(credential.clone()))
    }

    fn revoke(&self, token: &AccessToken) -> Result<(), HarnessError> {
        self.0.revoke(token).map_err(wrap)
    }

    fn introspect(&self, token: &AccessToken) -> Result<Introspection, HarnessError> {
        self.0.introspect(token).map_err(wrap)
    }
}
