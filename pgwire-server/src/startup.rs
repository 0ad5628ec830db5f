//! The startup phase of a connection: TLS policy, authentication (trust or SCRAM-SHA-256
//! against the metastore's users), then the session's user and the cancel registry.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, ConnectionManager, METADATA_USER, PgWireConnectionState, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use quarry_coordinator::Session;
use quarry_coordinator::users::SCRAM_ITERATIONS;
use quarry_metastore::Metastore;
use ring::hmac;
use ring::rand::SystemRandom;

use crate::backend::CancelSlot;
use crate::errors::{password_failed, tls_required};

/// How clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Any user name, no password (`quarry local` on loopback).
    Trust,
    /// SCRAM-SHA-256 against the metastore's users.
    Scram,
}

/// What every connection's startup needs, shared by the server.
#[derive(Debug)]
pub(crate) struct StartupPolicy {
    pub(crate) require_tls: bool,
    /// Present when passwords are required.
    pub(crate) users: Option<Arc<Users>>,
    /// The certificate SCRAM-SHA-256-PLUS binds to (TLS connections only).
    pub(crate) channel_binding: Option<Arc<Vec<u8>>>,
}

/// The metastore's users, as SCRAM sees them.
pub(crate) struct Users {
    metastore: Metastore,
    /// Keys the made-up salt of unknown users: the same for a name on every attempt, so
    /// an unknown user looks like a known one.
    mock_salt_key: hmac::Key,
}

impl Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").finish_non_exhaustive()
    }
}

impl Users {
    pub(crate) fn new(metastore: Metastore) -> std::io::Result<Self> {
        let mock_salt_key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| std::io::Error::other("no random numbers for the server's keys"))?;
        Ok(Self {
            metastore,
            mock_salt_key,
        })
    }
}

/// One connection's view of [`Users`]: remembers whether the user it found is an admin.
#[derive(Debug)]
struct UserSource {
    users: Arc<Users>,
    admin: Mutex<Option<bool>>,
}

#[async_trait]
impl AuthSource for UserSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let name = login.user().unwrap_or_default();
        let found = self
            .users
            .metastore
            .get_user(name)
            .await
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        match found {
            Some(user) if user.verifier.iterations == SCRAM_ITERATIONS => {
                *self.admin.lock().expect("user flag") = Some(user.admin);
                Ok(Password::new(
                    Some(user.verifier.salt),
                    user.verifier.salted_password,
                ))
            }
            // Unknown (or unusable) user: an exchange that fails like a wrong password.
            _ => {
                let tag = hmac::sign(&self.users.mock_salt_key, name.as_bytes());
                let salt = tag.as_ref()[..16].to_vec();
                let mut impossible = [0u8; 32];
                ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut impossible)
                    .map_err(|_| PgWireError::ApiError("no random numbers".into()))?;
                Ok(Password::new(Some(salt), impossible.to_vec()))
            }
        }
    }
}

/// The ParameterStatus values drivers read; `server_version` is a PostgreSQL 15 version, then
/// Quarry's.
fn server_parameters() -> DefaultServerParameterProvider {
    let mut parameters = DefaultServerParameterProvider::default();
    parameters.server_version = quarry_coordinator::SERVER_VERSION.to_string();
    parameters.time_zone = "UTC".to_string();
    parameters.date_style = "ISO, MDY".to_string();
    parameters.is_superuser = false;
    parameters
}

type Sasl = SASLAuthStartupHandler<DefaultServerParameterProvider>;

/// Authenticates a connection as the server's policy says, then announces the server as
/// PostgreSQL 15-compatible (drivers read `server_version`).
pub(crate) struct QuarryStartup {
    pub(crate) session: Arc<Session>,
    pub(crate) connections: Arc<ConnectionManager>,
    pub(crate) cancel: Arc<CancelSlot>,
    pub(crate) policy: Arc<StartupPolicy>,
    /// The SCRAM exchange, made at the startup message (channel binding only over TLS).
    sasl: OnceLock<(Sasl, Arc<UserSource>)>,
}

impl QuarryStartup {
    pub(crate) fn new(
        session: Arc<Session>,
        connections: Arc<ConnectionManager>,
        cancel: Arc<CancelSlot>,
        policy: Arc<StartupPolicy>,
    ) -> Self {
        Self {
            session,
            connections,
            cancel,
            policy,
            sasl: OnceLock::new(),
        }
    }

    fn sasl(&self, users: &Arc<Users>, secure: bool) -> &(Sasl, Arc<UserSource>) {
        self.sasl.get_or_init(|| {
            let source = Arc::new(UserSource {
                users: Arc::clone(users),
                admin: Mutex::new(None),
            });
            let mut scram = ScramAuth::new(Arc::clone(&source) as Arc<dyn AuthSource>);
            scram.set_iterations(SCRAM_ITERATIONS as usize);
            // libpq refuses SCRAM-SHA-256-PLUS offered over plaintext.
            if secure
                && let Some(pem) = &self.policy.channel_binding
                && let Err(e) = scram.configure_certificate(pem)
            {
                tracing::warn!(error = %e, "SCRAM channel binding is off");
            }
            (
                SASLAuthStartupHandler::new(Arc::new(server_parameters())).with_scram(scram),
                source,
            )
        })
    }

    /// The connection is in: the session runs as `user` (a client that sent none stays
    /// `quarry`), and cancel requests find it.
    fn established<C: ClientInfo>(&self, client: &C, user: &str, admin: bool) {
        if !user.is_empty() {
            self.session.set_user(user);
        }
        self.session.set_admin(admin);
        let (pid, secret_key) = client.pid_and_secret_key();
        *self.cancel.0.lock().expect("cancel slot") =
            Some(self.connections.register(pid, secret_key));
    }
}

#[async_trait]
impl StartupHandler for QuarryStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = match &message {
            PgWireFrontendMessage::Startup(startup) => {
                startup.parameters.get(METADATA_USER).cloned()
            }
            _ => client.metadata().get(METADATA_USER).cloned(),
        }
        .unwrap_or_default();
        if matches!(message, PgWireFrontendMessage::Startup(_))
            && self.policy.require_tls
            && !client.is_secure()
        {
            return Err(tls_required(&user));
        }
        let Some(users) = &self.policy.users else {
            if let PgWireFrontendMessage::Startup(ref startup) = message {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let (pid, secret_key) = RandomPidSecretKeyGenerator::default().generate(client);
                client.set_pid_and_secret_key(pid, secret_key);
                self.established(client, &user, true);
                finish_authentication(client, &server_parameters()).await?;
            }
            return Ok(());
        };
        let (sasl, source) = self.sasl(users, client.is_secure());
        match sasl.on_startup(client, message).await {
            Ok(()) => {}
            Err(PgWireError::InvalidPassword(_)) => return Err(password_failed(&user)),
            Err(e) => return Err(e),
        }
        if matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            let admin = source.admin.lock().expect("user flag").unwrap_or(false);
            self.established(client, &user, admin);
        }
        Ok(())
    }
}
