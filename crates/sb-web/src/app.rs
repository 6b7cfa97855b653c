//! The application: shared state, and the router built from the route table.

use std::sync::Arc;

use axum::Router;
use chrono::{DateTime, Utc};
use sb_core::{Clock, SystemClock};
use sb_jobs::Scheduler;
use sb_privacy::Vault;
use sb_store::{Db, MigrationSet};

use crate::auth::jwt::JwtVerifier;
use crate::auth::ratelimit::RateLimiter;
use crate::auth::sessions::Lifetime;
use crate::config::WebConfig;
use crate::error::WebError;
use crate::ingestion::{IngestionOverview, NoIngestion};
use crate::rbac::Roles;
use crate::routes::RouteInfo;

/// What every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    db: Db,
    vault: Option<Arc<Vault>>,
    scheduler: Option<Arc<Scheduler>>,
    config: WebConfig,
    roles: Roles,
    clock: Arc<dyn Clock>,
    jwt: Option<JwtVerifier>,
    limiter: RateLimiter,
    ingestion: Arc<dyn IngestionOverview>,
    migrations: Vec<&'static MigrationSet>,
}

impl AppState {
    /// The operational store.
    pub fn db(&self) -> &Db {
        &self.0.db
    }

    /// The privacy vault, when the app has one.
    pub fn vault(&self) -> Result<&Arc<Vault>, WebError> {
        self.0.vault.as_ref().ok_or_else(|| WebError::Unavailable("the vault is not open in this process".into()))
    }

    /// The scheduler, when the app has one.
    pub fn scheduler(&self) -> Result<&Arc<Scheduler>, WebError> {
        self.0.scheduler.as_ref().ok_or_else(|| WebError::Unavailable("no scheduler in this process".into()))
    }

    /// The configuration.
    pub fn config(&self) -> &WebConfig {
        &self.0.config
    }

    /// The role table.
    pub fn roles(&self) -> &Roles {
        &self.0.roles
    }

    /// Now, by the app's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.0.clock.now()
    }

    /// The customer-token verifier, when configured.
    pub fn jwt(&self) -> Option<&JwtVerifier> {
        self.0.jwt.as_ref()
    }

    /// The sign-in rate limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.0.limiter
    }

    /// Where the dashboard reads ingestion's state.
    pub fn ingestion(&self) -> &dyn IngestionOverview {
        self.0.ingestion.as_ref()
    }

    /// The migrations that must be applied for the app to be ready.
    pub fn migrations(&self) -> &[&'static MigrationSet] {
        &self.0.migrations
    }

    /// When sessions end.
    pub fn session_lifetime(&self) -> Lifetime {
        let a = &self.0.config.auth;
        Lifetime {
            idle: chrono::Duration::minutes(i64::try_from(a.session_idle_minutes).unwrap_or(30)),
            max: chrono::Duration::hours(i64::try_from(a.session_max_hours).unwrap_or(12)),
        }
    }

    /// Whether cookies get the `Secure` attribute.
    pub fn secure_cookies(&self) -> bool {
        let s = &self.0.config.server;
        s.secure_cookies || s.tls_cert_file.is_some()
    }
}

/// The built application: its router and the route table it was built from.
pub struct WebApp {
    router: Router,
    routes: Vec<RouteInfo>,
    state: AppState,
}

impl WebApp {
    /// Starts building an app over `db` (migrated with [`crate::MIGRATIONS`] and
    /// [`crate::monitor::MIGRATIONS`]).
    pub fn builder(db: Db, config: WebConfig) -> WebAppBuilder {
        WebAppBuilder {
            db,
            config,
            vault: None,
            scheduler: None,
            clock: Arc::new(SystemClock),
            ingestion: Arc::new(NoIngestion),
            migrations: vec![&crate::MIGRATIONS, &crate::monitor::MIGRATIONS],
        }
    }

    /// The router, with every layer; serve it or call it in tests.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Every route with the access it needs.
    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

/// Options of a [`WebApp`].
pub struct WebAppBuilder {
    db: Db,
    config: WebConfig,
    vault: Option<Arc<Vault>>,
    scheduler: Option<Arc<Scheduler>>,
    clock: Arc<dyn Clock>,
    ingestion: Arc<dyn IngestionOverview>,
    migrations: Vec<&'static MigrationSet>,
}

impl WebAppBuilder {
    /// The privacy vault, for the privacy pages and the audit log.
    pub fn vault(mut self, vault: Arc<Vault>) -> Self {
        self.vault = Some(vault);
        self
    }

    /// The scheduler, for the jobs pages.
    pub fn scheduler(mut self, scheduler: Arc<Scheduler>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// A clock other than the wall clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where the dashboard reads ingestion's state.
    pub fn ingestion(mut self, ingestion: Arc<dyn IngestionOverview>) -> Self {
        self.ingestion = ingestion;
        self
    }

    /// Every migration set `/readyz` requires (the binary passes all of the store's).
    pub fn migrations(mut self, migrations: Vec<&'static MigrationSet>) -> Self {
        self.migrations = migrations;
        self
    }

    /// Builds the app; fails on a bad `[auth]` section (roles, JWT key).
    pub fn build(self) -> Result<WebApp, String> {
        crate::ops::prometheus();
        let roles = Roles::new(&self.config.auth.roles)?;
        let jwt = JwtVerifier::from_config(&self.config.auth.jwt)?;
        let limiter = RateLimiter::new(self.config.auth.sign_in_per_minute);
        let state = AppState(Arc::new(Inner {
            db: self.db,
            vault: self.vault,
            scheduler: self.scheduler,
            config: self.config,
            roles,
            clock: self.clock,
            jwt,
            limiter,
            ingestion: self.ingestion,
            migrations: self.migrations,
        }));
        let (router, routes) = crate::routes::build(state.clone());
        Ok(WebApp { router, routes, state })
    }
}
