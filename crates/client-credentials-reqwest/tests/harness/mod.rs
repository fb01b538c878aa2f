//! The async client behind the testkit's (blocking) conformance harness: each call blocks
//! on a runtime the harness owns. Every call of the suite into `client_credentials_reqwest`
//! is in this file (the facade's tests include it too).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use client_credentials_reqwest::core::ServerMetadata;
use client_credentials_reqwest::reqwest::{self, Body};
use client_credentials_reqwest::{
    AccessToken, Client, Config, Counters, Credentials, Error, Introspection, StaticCredential,
    Token, TokenError, TokenParams,
};
use client_credentials_testkit::conformance::{
    Answer, Harness, HarnessError, HarnessErrorKind as Kind, HarnessOptions, Outgoing,
};
use tokio::runtime::{Builder, Runtime};

/// One `client_credentials_reqwest::Client` and the runtime it runs on: a multi-threaded
/// one (two workers), so that concurrent callers are tasks running in parallel, or a
/// current-thread one when the options ask for everything on the calling thread.
#[derive(Clone)]
pub(crate) struct ReqwestHarness {
    client: Client,
    runtime: Arc<Runtime>,
}

impl fmt::Debug for ReqwestHarness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.client, f)
    }
}

impl From<Error> for Boxed {
    fn from(error: Error) -> Self {
        let kind = match error {
            Error::Token(_) | Error::Endpoint(_) => Kind::Token,
            Error::Config(_) => Kind::Config,
            Error::Request(_) => Kind::Request,
            _ => Kind::Other,
        };
        let config = if let Error::Config(e) = &error {
            Some(e.clone())
        } else {
            None
        };
        let classes = client_credentials_testkit::classes_of!(error);
        let discovery = match &error {
            Error::Discovery(e) => Some((**e).clone()),
            _ => None,
        };
        let mut wrapped = HarnessError::new(kind, error.token_error().cloned(), config, error)
            .with_classes(classes);
        if let Some(discovery) = discovery {
            wrapped = wrapped.with_discovery(discovery);
        }
        Self(wrapped)
    }
}

/// A [`HarnessError`] made from the adapter's error with `?`.
struct Boxed(HarnessError);

impl ReqwestHarness {
    /// Runs `call` to completion on the harness's runtime.
    fn on<T>(&self, call: impl Future<Output = Result<T, Error>>) -> Result<T, HarnessError> {
        self.runtime.block_on(call).map_err(|e| Boxed::from(e).0)
    }

    async fn send(&self, request: Outgoing, credentials: Credentials) -> Result<Answer, Boxed> {
        let mut builder = reqwest::Client::new().request(request.method, &request.url);
        builder = match request.body {
            Some(bytes) if request.replayable => builder.body(bytes),
            // A body reqwest cannot clone.
            Some(bytes) => builder.body(Body::wrap(String::from_utf8(bytes).unwrap())),
            None => builder,
        };
        let response = credentials.send_authorized(builder).await?;
        let debug = format!("{credentials:?}\n{response:?}");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| Boxed(HarnessError::new(Kind::Request, None, None, e)))?;
        Ok(Answer {
            status,
            headers,
            body: body.to_vec(),
            debug,
        })
    }
}

impl Harness for ReqwestHarness {
    const CALLERS: usize = 1000;

    fn discover(issuer: &str) -> Result<ServerMetadata, HarnessError> {
        let runtime = Builder::new_current_thread().enable_all().build().unwrap();
        runtime
            .block_on(client_credentials_reqwest::discover(issuer))
            .map_err(|e| Boxed::from(e).0)
    }

    fn build(config: Config, options: &HarnessOptions) -> Self {
        let runtime = if options.single_threaded {
            Builder::new_current_thread().enable_all().build()
        } else {
            Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        };
        let mut client = Client::builder(config);
        if let Some(seed) = options.seed {
            client = client.seed(seed);
        }
        if let Some(background) = options.background_refresh {
            client = client.background_refresh(background);
        }
        if let Some(limit) = options.timeout {
            client = client.timeout(limit);
        }
        if let Some(policy) = options.policy.clone() {
            client = client.policy(policy);
        }
        Self {
            client: client.build().unwrap(),
            runtime: Arc::new(runtime.unwrap()),
        }
    }

    fn token(&self) -> Result<Arc<Token>, HarnessError> {
        self.on(self.client.token())
    }

    fn token_for(&self, params: &TokenParams) -> Result<Arc<Token>, HarnessError> {
        self.on(self.client.token_for(params))
    }

    fn concurrent_tokens(&self, callers: usize) -> Vec<Result<Arc<Token>, HarnessError>> {
        let barrier = Arc::new(tokio::sync::Barrier::new(callers));
        self.runtime.block_on(async {
            let tasks: Vec<_> = (0..callers)
                .map(|_| {
                    let (client, barrier) = (self.client.clone(), Arc::clone(&barrier));
                    tokio::spawn(async move {
                        barrier.wait().await;
                        client.token().await
                    })
                })
                .collect();
            let mut answers = Vec::with_capacity(callers);
            for task in tasks {
                let answer = tokio::time::timeout(Duration::from_secs(10), task)
                    .await
                    .expect("a task waited forever")
                    .unwrap();
                answers.push(answer.map_err(|e| Boxed::from(e).0));
            }
            answers
        })
    }

    fn invalidate(&self, rejected: &AccessToken) -> bool {
        self.client.invalidate(rejected)
    }

    fn force_refresh(&self) {
        self.client.force_refresh();
    }

    fn force_refresh_for(&self, params: &TokenParams) -> Result<(), HarnessError> {
        self.client
            .force_refresh_for(params)
            .map_err(|e| Boxed::from(e).0)
    }

    fn counters(&self) -> Counters {
        self.client.counters()
    }

    fn counters_for(&self, params: &TokenParams) -> Result<Counters, HarnessError> {
        self.client
            .counters_for(params)
            .map_err(|e| Boxed::from(e).0)
    }

    fn last_error(&self) -> Option<TokenError> {
        self.client.last_error()
    }

    fn cached_shapes(&self) -> usize {
        self.client.cached_shapes()
    }

    fn next_refresh(&self) -> Option<Instant> {
        self.client.next_refresh()
    }

    fn authorize(&self, request: &mut http::Request<()>) -> Result<AccessToken, HarnessError> {
        self.on(self.client.authorize(request))
    }

    fn send_authorized(&self, request: Outgoing) -> Result<Answer, HarnessError> {
        let credentials = Credentials::from(self.client.clone());
        self.runtime
            .block_on(self.send(request, credentials))
            .map_err(|boxed| boxed.0)
    }

    fn restore(&self, token: Token) -> Result<bool, HarnessError> {
        self.client.restore(token).map_err(|e| Boxed::from(e).0)
    }

    fn clear(&self) -> usize {
        self.client.clear()
    }

    fn send_static(
        &self,
        credential: &StaticCredential,
        request: Outgoing,
    ) -> Result<Answer, HarnessError> {
        let credentials = Credentials::from(credential.clone());
        self.runtime
            .block_on(self.send(request, credentials))
            .map_err(|boxed| boxed.0)
    }

    fn revoke(&self, token: &AccessToken) -> Result<(), HarnessError> {
        self.on(self.client.revoke(token))
    }

    fn introspect(&self, token: &AccessToken) -> Result<Introspection, HarnessError> {
        self.on(self.client.introspect(token))
    }
}
