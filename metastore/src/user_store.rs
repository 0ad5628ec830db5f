//! Users of the PostgreSQL front end. Only SCRAM-SHA-256 verifiers are stored (computed by
//! the caller); a password never reaches the metastore.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::now;
use crate::{Metastore, MetastoreError, Result};

/// A SCRAM-SHA-256 verifier: what a server needs to check a password without knowing it.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub salt: Vec<u8>,
    pub iterations: u32,
    /// PBKDF2-HMAC-SHA256(SASLprep(password), salt, iterations).
    pub salted_password: Vec<u8>,
}

impl std::fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub verifier: ScramVerifier,
    /// May create, alter and drop users.
    pub admin: bool,
}

fn hex_decode(text: &str, name: &str) -> Result<Vec<u8>> {
    hex::decode(text).map_err(|_| MetastoreError::CorruptUser(name.to_string()))
}

fn user_from_row(row: &AnyRow) -> Result<UserRecord> {
    let name: String = row.try_get("name")?;
    let salt: String = row.try_get("scram_salt")?;
    let salted: String = row.try_get("scram_salted_password")?;
    let iterations: i64 = row.try_get("scram_iterations")?;
    let admin: i64 = row.try_get("admin")?;
    Ok(UserRecord {
        verifier: ScramVerifier {
            salt: hex_decode(&salt, &name)?,
            iterations: u32::try_from(iterations)
                .map_err(|_| MetastoreError::CorruptUser(name.clone()))?,
            salted_password: hex_decode(&salted, &name)?,
        },
        admin: admin != 0,
        name,
    })
}

impl Metastore {
    /// One user, or `None`.
    pub async fn get_user(&self, name: &str) -> Result<Option<UserRecord>> {
        sqlx::query(self.sql(
            "SELECT name, scram_salt, scram_iterations, scram_salted_password, admin FROM mst_users WHERE name = ?",
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>> {
        sqlx::query(self.sql(
            "SELECT name, scram_salt, scram_iterations, scram_salted_password, admin FROM mst_users ORDER BY name",
        ))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(user_from_row)
        .collect()
    }

    /// How many users exist.
    pub async fn count_users(&self) -> Result<u64> {
        let row = sqlx::query(self.sql("SELECT COUNT(*) AS n FROM mst_users"))
            .fetch_one(self.pool())
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// Stores a new user; an existing name is [`MetastoreError::UserExists`].
    pub async fn create_user(&self, user: &UserRecord) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let exists = sqlx::query(self.sql("SELECT 1 FROM mst_users WHERE name = ?"))
            .bind(&user.name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            return Err(MetastoreError::UserExists(user.name.clone()));
        }
        let now = now();
        sqlx::query(self.sql(
            "INSERT INTO mst_users (name, scram_salt, scram_iterations, scram_salted_password, admin, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&user.name)
        .bind(hex::encode(&user.verifier.salt))
        .bind(i64::from(user.verifier.iterations))
        .bind(hex::encode(&user.verifier.salted_password))
        .bind(i64::from(user.admin))
        .bind(&now)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes a user's verifier and/or admin flag; an unknown name is
    /// [`MetastoreError::UserNotFound`].
    pub async fn alter_user(
        &self,
        name: &str,
        verifier: Option<&ScramVerifier>,
        admin: Option<bool>,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let exists = sqlx::query(self.sql("SELECT 1 FROM mst_users WHERE name = ?"))
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Err(MetastoreError::UserNotFound(name.to_string()));
        }
        let now = now();
        if let Some(verifier) = verifier {
            sqlx::query(self.sql(
                "UPDATE mst_users SET scram_salt = ?, scram_iterations = ?, scram_salted_password = ?, updated_at = ? WHERE name = ?",
            ))
            .bind(hex::encode(&verifier.salt))
            .bind(i64::from(verifier.iterations))
            .bind(hex::encode(&verifier.salted_password))
            .bind(&now)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(admin) = admin {
            sqlx::query(self.sql("UPDATE mst_users SET admin = ?, updated_at = ? WHERE name = ?"))
                .bind(i64::from(admin))
                .bind(&now)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a user; returns whether it existed.
    pub async fn drop_user(&self, name: &str) -> Result<bool> {
        let done = sqlx::query(self.sql("DELETE FROM mst_users WHERE name = ?"))
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
