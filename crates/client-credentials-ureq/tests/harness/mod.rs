//! The blocking client behind the testkit's conformance harness. Every call of the suite
//! into `client_credentials_ureq` is in this file (the facade's tests include it too).

use std::fmt;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use client_credentials_testkit::conformance::{
    Answer, Harness, HarnessError, HarnessErrorKind, HarnessOptions, Outgoing,
};
use client_credentials_ureq::{
    AccessToken, Client, Config, Counters, Error, Introspection, Token, TokenError, TokenParams,
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
        Error::Token(_) => HarnessErrorKind::Token,
        Error::Config(_) => HarnessErrorKind::Config,
        _ => HarnessErrorKind::Other,
    };
    let config = match &error {
        Error::Config(e) => Some(e.clone()),
        _ => None,
    };
    HarnessError::new(kind, error.token_error().cloned(), config, error)
}

impl UreqHarness {
    /// Sends `request` with a token, and reads the whole answer; returns it with the token.
    fn send(&self, request: &Outgoing) -> Result<(Answer, Arc<Token>), HarnessError> {
        let mut http = http::Request::builder()
            .method(request.method.clone())
            .uri(&request.url)
            .body(request.body.clone().unwrap_or_default())
            .unwrap();
        let token = self.0.authorize(&mut http).map_err(wrap)?;
        let sent = format!("{http:?}");
        let request_error = |e: client_credentials_ureq::ureq::Error| {
            HarnessError::new(HarnessErrorKind::Request, None, None, e)
        };
        let mut response = self.0.agent().run(http).map_err(request_error)?;
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
        let body = response.body_mut().read_to_vec().map_err(request_error)?;
        let answer = Answer {
            status: response.status().as_u16(),
            headers,
            body,
            debug,
        };
        Ok((answer, token))
    }
}

impl Harness for UreqHarness {
    const CALLERS: usize = 64;

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
        self.0.counters().last_error
    }

    fn next_refresh(&self) -> Option<Instant> {
        self.0.counters().next_refresh
    }

    fn authorize(&self, request: &mut http::Request<()>) -> Result<Arc<Token>, HarnessError> {
        self.0.authorize(request).map_err(wrap)
    }

    // TODO(issue 13): use Client::send_authorized (this stand-in is its documented rule:
    // on a 401, drop the rejected token and retry once with a fresh one if the request can
    // be replayed).
    fn send_authorized(&self, request: Outgoing) -> Result<Answer, HarnessError> {
        let (mut answer, used) = self.send(&request)?;
        if answer.status == 401 {
            self.0.invalidate(used.access_token());
            let fresh = request.replayable.then(|| self.0.token()).transpose();
            if fresh
                .map_err(wrap)?
                .is_some_and(|t| t.access_token() != used.access_token())
            {
                answer = self.send(&request)?.0;
            }
        }
        Ok(answer)
    }

    fn revoke(&self, token: &AccessToken) -> Result<(), HarnessError> {
        self.0.revoke(token).map_err(wrap)
    }

    fn introspect(&self, token: &AccessToken) -> Result<Introspection, HarnessError> {
        self.0.introspect(token).map_err(wrap)
    }
}
