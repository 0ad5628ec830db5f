//! `CREATE/ALTER/DROP USER`: users of the PostgreSQL front end, kept in the metastore as
//! SCRAM-SHA-256 verifiers.
//!
//! Who may do what: a session is an administrator when its user has the admin flag
//! (`SUPERUSER`), or when the server trusts its connections (`quarry local` without
//! `--auth scram`, the embedded shell). Administrators create, alter and drop users; any
//! user may change their own password.

use pgwire::api::auth::sasl::scram::gen_salted_password;
use quarry_metastore::{MetastoreError, ScramVerifier, UserRecord};
use ring::rand::{SecureRandom, SystemRandom};

use crate::front::{Password, Statement};
use crate::session::{Output, Session};
use crate::{CoordinatorError, Engine, Result};

/// PBKDF2 iterations of new verifiers: PostgreSQL's default `scram_iterations`.
pub const SCRAM_ITERATIONS: u32 = 4096;

/// Bytes of salt of a new verifier (PostgreSQL uses 16).
const SALT_LEN: usize = 16;

/// A new SCRAM-SHA-256 verifier of `password`, with a random salt.
pub fn scram_verifier(password: &str) -> Result<ScramVerifier> {
    if password.is_empty() {
        return Err(CoordinatorError::Invalid(
            "a password must not be empty".into(),
        ));
    }
    // What psql's \password and PostgreSQL dumps send: a verifier Quarry cannot use
    // (pgwire's SCRAM needs SaltedPassword), which must not become the password itself.
    if password.starts_with("SCRAM-SHA-256$") || is_md5_hash(password) {
        return Err(CoordinatorError::Invalid(
            "a pre-hashed password (SCRAM-SHA-256$... or md5...) cannot be stored; give the \
             password itself (over TLS)"
                .into(),
        ));
    }
    let mut salt = vec![0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| CoordinatorError::Invalid("no random numbers for a salt".into()))?;
    let salted_password = gen_salted_password(password, &salt, SCRAM_ITERATIONS as usize);
    Ok(ScramVerifier {
        salt,
        iterations: SCRAM_ITERATIONS,
        salted_password,
    })
}

/// PostgreSQL's md5 password hash: `md5` and 32 hex digits.
fn is_md5_hash(password: &str) -> bool {
    password.len() == 35
        && password.starts_with("md5")
        && password[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn require_admin(session: &Session, action: &str) -> Result<()> {
    if session.is_admin() {
        Ok(())
    } else {
        Err(CoordinatorError::PermissionDenied(format!(
            "permission denied to {action}: user \"{}\" is not an administrator (SUPERUSER)",
            session.user()
        )))
    }
}

/// Runs a user statement.
pub(crate) async fn execute(session: &Session, statement: Statement) -> Result<Output> {
    let metastore = session.engine().metastore();
    match statement {
        Statement::CreateUser {
            name,
            password: Password(password),
            admin,
        } => {
            require_admin(session, "create users")?;
            let user = UserRecord {
                name,
                verifier: scram_verifier(&password)?,
                admin,
            };
            metastore.create_user(&user).await?;
            Ok(Output::Done("CREATE ROLE".into()))
        }
        Statement::AlterUser {
            name,
            password,
            admin,
        } => {
            let own_password = name == session.user() && admin.is_none();
            if !own_password {
                require_admin(session, "alter other users or their SUPERUSER flag")?;
            }
            let verifier = password.map(|p| scram_verifier(&p.0)).transpose()?;
            metastore
                .alter_user(&name, verifier.as_ref(), admin)
                .await?;
            Ok(Output::Done("ALTER ROLE".into()))
        }
        Statement::DropUser { name, if_exists } => {
            require_admin(session, "drop users")?;
            if name == session.user() {
                return Err(CoordinatorError::Invalid(format!(
                    "current user \"{name}\" cannot be dropped"
                )));
            }
            if !metastore.drop_user(&name).await? && !if_exists {
                return Err(MetastoreError::UserNotFound(name).into());
            }
            Ok(Output::Done("DROP ROLE".into()))
        }
        other => Err(CoordinatorError::Invalid(format!(
            "not a user statement: {other:?}"
        ))),
    }
}

/// The first administrator of a server that requires passwords.
#[derive(Debug)]
pub enum AdminBootstrap {
    /// The user was created as an administrator.
    Created,
    /// The user existed (its password is left as it is).
    Existed,
    /// No administrator was named and users exist.
    NotNeeded,
}

impl Engine {
    /// Makes sure a server that requires passwords has someone who can log in: creates
    /// `admin` (name and password) as an administrator unless that user exists. Without
    /// `admin`, at least one user must exist.
    pub async fn ensure_admin(&self, admin: Option<(&str, &str)>) -> Result<AdminBootstrap> {
        let metastore = self.metastore();
        match admin {
            Some((name, password)) => {
                if metastore.get_user(name).await?.is_some() {
                    return Ok(AdminBootstrap::Existed);
                }
                let user = UserRecord {
                    name: name.to_string(),
                    verifier: scram_verifier(password)?,
                    admin: true,
                };
                metastore.create_user(&user).await?;
                Ok(AdminBootstrap::Created)
            }
            None if metastore.count_users().await? > 0 => Ok(AdminBootstrap::NotNeeded),
            None => Err(CoordinatorError::Invalid(
                "no user can log in: the metastore has no users; start once with \
                 --admin-user NAME and the password in QUARRY_ADMIN_PASSWORD to create the \
                 first administrator"
                    .into(),
            )),
        }
    }
}
