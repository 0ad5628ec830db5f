//! Cluster trust: the coordinator and its workers share `QUARRY_CLUSTER_SECRET`.
//!
//! Every gRPC and Arrow Flight call inside the cluster carries a token derived from the
//! secret (never the secret itself) in its `user-agent` header, the one header Ballista
//! lets an embedder set on every client it creates (through its endpoint override). The
//! scheduler's gRPC service, each worker's Flight service and each worker's task service
//! (through a gate, see `gate.rs`) refuse calls without it.

use std::fmt;
use std::sync::Arc;

use ballista_core::extension::EndpointOverrideFn;
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

/// The environment variable holding the shared secret.
pub const CLUSTER_SECRET_ENV: &str = "QUARRY_CLUSTER_SECRET";

/// Shortest secret accepted: shorter ones are guessable.
const MIN_SECRET_LEN: usize = 16;

/// What goes before the token in the `user-agent` header.
const AGENT_PREFIX: &str = "quarry-cluster/";

/// The shared secret, kept only as the token derived from it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret {
    token: Arc<str>,
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl ClusterSecret {
    /// Derives the token from `secret`; refuses secrets too short to be one.
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "{CLUSTER_SECRET_ENV} must be at least {MIN_SECRET_LEN} characters long"
            ));
        }
        let digest = Sha256::new()
            .chain_update(b"quarry-cluster-token-v1\0")
            .chain_update(secret.as_bytes())
            .finalize();
        Ok(Self {
            token: hex::encode(digest).into(),
        })
    }

    /// The secret from `QUARRY_CLUSTER_SECRET`, with an error that says how to set it.
    pub fn from_env(role: &str) -> Result<Self, String> {
        match std::env::var(CLUSTER_SECRET_ENV) {
            Ok(secret) if !secret.is_empty() => Self::new(&secret),
            _ => Err(format!(
                "{CLUSTER_SECRET_ENV} is not set: the {role} needs the secret the coordinator \
                 and its workers share (at least {MIN_SECRET_LEN} characters, e.g. \
                 `export {CLUSTER_SECRET_ENV}=$(openssl rand -hex 32)` on every host)"
            )),
        }
    }

    fn user_agent(&self) -> String {
        format!("{AGENT_PREFIX}{}", self.token)
    }

    /// An endpoint override that makes every Ballista client present the token.
    pub fn endpoint_override(&self) -> EndpointOverrideFn {
        let agent = self.user_agent();
        Arc::new(move |endpoint| Ok(endpoint.user_agent(agent.clone())?))
    }

    /// A tonic interceptor that refuses calls without the token.
    pub fn interceptor(
        &self,
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + use<> {
        let agent = self.user_agent();
        move |request: Request<()>| {
            let presented = request
                .metadata()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            // tonic appends its own agent after ours: "quarry-cluster/<token> tonic/0.14".
            if presented.split(' ').any(|part| part == agent) {
                Ok(request)
            } else {
                Err(Status::unauthenticated(format!(
                    "this peer did not present the cluster secret: start it with the same \
                     {CLUSTER_SECRET_ENV} as the coordinator"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_depend_on_the_secret_and_never_contain_it() {
        let a = ClusterSecret::new("correct horse battery staple").unwrap();
        let b = ClusterSecret::new("correct horse battery stapler").unwrap();
        assert_ne!(a, b);
        assert!(!a.user_agent().contains("horse"));
        assert_eq!(format!("{a:?}"), "ClusterSecret(<redacted>)");
        assert!(
            ClusterSecret::new("short")
                .unwrap_err()
                .contains("16 characters")
        );
    }

    #[test]
    fn the_interceptor_admits_only_the_same_secret() {
        let secret = ClusterSecret::new("0123456789abcdef0123").unwrap();
        let other = ClusterSecret::new("fedcba98765432100123").unwrap();
        let mut check = secret.interceptor();
        let with = |agent: String| {
            let mut request = Request::new(());
            request
                .metadata_mut()
                .insert("user-agent", agent.parse().unwrap());
            request
        };
        assert!(check(with(format!("{} tonic/0.14.9", secret.user_agent()))).is_ok());
        let refused = check(with(format!("{} tonic/0.14.9", other.user_agent()))).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert!(refused.message().contains(CLUSTER_SECRET_ENV));
        assert!(check(Request::new(())).is_err());
    }
}
