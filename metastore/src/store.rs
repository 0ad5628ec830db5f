//! Persistence of the Hive model through sqlx: SQLite (the embedded default),
//! PostgreSQL or MySQL/MariaDB (shared deployments, like Hive's metastore on RDS).
//!
//! Statements are written once, with `?` placeholders and SQL all three accept; they are
//! rewritten to `$n` placeholders for PostgreSQL.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Once;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Executor, Row};

use crate::model::partition_spec;
use crate::{Database, MetastoreError, Partition, Result, Table, TableStatistics, TableType};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which server holds the metastore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

/// The metastore: a handle to the store, cheap to clone and share between sessions.
#[derive(Debug, Clone)]
pub struct Metastore {
    pub(crate) pool: AnyPool,
    backend: Backend,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("metastore model serializes to JSON")
}

pub(crate) fn from_json<T: DeserializeOwned>(
    text: &str,
    object: impl FnOnce() -> String,
) -> Result<T> {
    serde_json::from_str(text).map_err(|source| MetastoreError::Corrupt {
        object: object(),
        source,
    })
}

impl Metastore {
    /// Opens (creating when missing) an SQLite metastore file and brings its schema up to
    /// date. The file is in WAL mode, so other processes (a crawler) can share it.
    pub async fn open_sqlite(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_url(&format!("sqlite://{}?mode=rwc", path.as_ref().display())).await
    }

    /// Opens a metastore from a URL: `sqlite://PATH`, `postgres://user@host/db` or
    /// `mysql://user@host/db`. The database must exist on a server; its tables are
    /// created or migrated here.
    pub async fn open_url(url: &str) -> Result<Self> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = match url.split(':').next().unwrap_or_default() {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            "mysql" | "mariadb" => Backend::MySql,
            other => return Err(MetastoreError::UnsupportedUrl(other.to_string())),
        };
        let url = if backend == Backend::MySql && url.starts_with("mariadb:") {
            url.replacen("mariadb:", "mysql:", 1)
        } else {
            url.to_string()
        };
        let options: AnyConnectOptions = url.parse()?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        if backend == Backend::Sqlite {
            // WAL is a property of the file: set once, kept by every later connection.
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        MIGRATIONS.run(&pool).await?;
        Ok(Self { pool, backend })
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The server kind holding this metastore.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The statement for this backend: `?` placeholders become `$1, $2, ...` on PostgreSQL.
    pub(crate) fn sql(&self, text: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
        if self.backend != Backend::Postgres {
            return AssertSqlSafe(Cow::Borrowed(text));
        }
        // Only placeholders changed in a constant statement: still injection-free.
        AssertSqlSafe(Cow::Owned(numbered_placeholders(text)))
    }

    // ---- databases ----

    /// All databases, by name.
    pub async fn list_databases(&self) -> Result<Vec<Database>> {
        let rows = sqlx::query(self.sql(
            "SELECT name, location, description, properties FROM mst_databases ORDER BY name",
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(database_from_row).collect()
    }

    /// One database, or `None`.
    pub async fn get_database(&self, name: &str) -> Result<Option<Database>> {
        let row = sqlx::query(self.sql(
            "SELECT name, location, description, properties FROM mst_databases WHERE name = ?",
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(database_from_row).transpose()
    }

    /// Creates a database. Returns false when it existed and `if_not_exists` was given.
    pub async fn create_database(&self, db: &Database, if_not_exists: bool) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query(self.sql("SELECT 1 FROM mst_databases WHERE name = ?"))
            .bind(&db.name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(MetastoreError::DatabaseExists(db.name.clone()))
            };
        }
        sqlx::query(self.sql(
            "INSERT INTO mst_databases (name, location, description, properties, created_at) VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(&db.name)
        .bind(&db.location)
        .bind(&db.description)
        .bind(to_json(&db.properties))
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Drops a database. Without `cascade` it must hold no tables. Returns the dropped
    /// database and its tables (so the caller can delete managed files), or `None` when it
    /// did not exist.
    pub async fn drop_database(
        &self,
        name: &str,
        cascade: bool,
    ) -> Result<Option<(Database, Vec<Table>)>> {
        let mut tx = self.pool.begin().await?;
        let Some(db) = sqlx::query(self.sql(
            "SELECT name, location, description, properties FROM mst_databases WHERE name = ?",
        ))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(database_from_row)
        .transpose()?
        else {
            return Ok(None);
        };
        let tables = sqlx::query(self.sql(TABLE_SELECT_BY_DB))
            .bind(name)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(table_from_row)
            .collect::<Result<Vec<_>>>()?;
        if !tables.is_empty() && !cascade {
            return Err(MetastoreError::DatabaseNotEmpty {
                database: name.to_string(),
                tables: tables.len(),
            });
        }
        for sql in [
            "DELETE FROM mst_partitions WHERE database_name = ?",
            "DELETE FROM mst_tables WHERE database_name = ?",
            "DELETE FROM mst_databases WHERE name = ?",
        ] {
            sqlx::query(self.sql(sql))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some((db, tables)))
    }

    // ---- tables ----

    /// All tables and views of a database, by name.
    pub async fn list_tables(&self, database: &str) -> Result<Vec<Table>> {
        self.require_database(database).await?;
        let rows = sqlx::query(self.sql(TABLE_SELECT_BY_DB))
            .bind(database)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(table_from_row).collect()
    }

    /// `(database, table)` names of every table and view, cheap enough to call per statement.
    pub async fn list_table_names(&self) -> Result<Vec<(String, String)>> {
        let rows =
            sqlx::query(self.sql("SELECT database_name, name FROM mst_tables ORDER BY 1, 2"))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// One table or view, or `None`.
    pub async fn get_table(&self, database: &str, name: &str) -> Result<Option<Table>> {
        let row = sqlx::query(self.sql(TABLE_SELECT_ONE))
            .bind(database)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(table_from_row).transpose()
    }

    /// Like [`Self::get_table`], but a missing table is an error naming it.
    pub async fn require_table(&self, database: &str, name: &str) -> Result<Table> {
        self.get_table(database, name)
            .await?
            .ok_or_else(|| MetastoreError::TableNotFound {
                database: database.to_string(),
                table: name.to_string(),
            })
    }

    async fn require_database(&self, name: &str) -> Result<Database> {
        self.get_database(name)
            .await?
            .ok_or_else(|| MetastoreError::DatabaseNotFound(name.to_string()))
    }

    /// Creates a table or view. With `replace`, an existing one of the same name is replaced
    /// (its partitions are dropped); with `if_not_exists` an existing one is kept and false
    /// returned; otherwise an existing one is an error.
    pub async fn create_table(
        &self,
        table: &Table,
        if_not_exists: bool,
        replace: bool,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let db_exists = sqlx::query(self.sql("SELECT 1 FROM mst_databases WHERE name = ?"))
            .bind(&table.database)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !db_exists {
            return Err(MetastoreError::DatabaseNotFound(table.database.clone()));
        }
        let exists =
            sqlx::query(self.sql("SELECT 1 FROM mst_tables WHERE database_name = ? AND name = ?"))
                .bind(&table.database)
                .bind(&table.name)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        if exists {
            if replace {
                self.delete_table(&mut tx, &table.database, &table.name)
                    .await?;
            } else if if_not_exists {
                return Ok(false);
            } else {
                return Err(MetastoreError::TableExists {
                    database: table.database.clone(),
                    table: table.name.clone(),
                });
            }
        }
        let stamp = now();
        sqlx::query(self.sql(
            "INSERT INTO mst_tables (database_name, name, table_type, columns, partition_keys, \
             storage, properties, view_sql, statistics, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&table.database)
        .bind(&table.name)
        .bind(table.table_type.as_hive_str())
        .bind(to_json(&table.columns))
        .bind(to_json(&table.partition_keys))
        .bind(to_json(&table.storage))
        .bind(to_json(&table.properties))
        .bind(&table.view_sql)
        .bind(table.statistics.as_ref().map(to_json))
        .bind(&stamp)
        .bind(&stamp)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Drops a table or view with its partitions; returns it, or `None` when missing.
    pub async fn drop_table(&self, database: &str, name: &str) -> Result<Option<Table>> {
        let mut tx = self.pool.begin().await?;
        let table = sqlx::query(self.sql(TABLE_SELECT_ONE))
            .bind(database)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(table_from_row)
            .transpose()?;
        if table.is_some() {
            self.delete_table(&mut tx, database, name).await?;
            tx.commit().await?;
        }
        Ok(table)
    }

    /// Stores statistics computed by ANALYZE.
    pub async fn set_statistics(
        &self,
        database: &str,
        name: &str,
        stats: &TableStatistics,
    ) -> Result<()> {
        let done = sqlx::query(self.sql("UPDATE mst_tables SET statistics = ?, updated_at = ? WHERE database_name = ? AND name = ?"))
        .bind(to_json(stats))
        .bind(now())
        .bind(database)
        .bind(name)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(MetastoreError::TableNotFound {
                database: database.into(),
                table: name.into(),
            });
        }
        Ok(())
    }

    // ---- partitions ----

    /// Every partition of a table, ordered by partition name.
    pub async fn list_partitions(&self, database: &str, table: &str) -> Result<Vec<Partition>> {
        let rows = sqlx::query(self.sql(
            "SELECT part_values, location, spec FROM mst_partitions \
             WHERE database_name = ? AND table_name = ? ORDER BY spec",
        ))
        .bind(database)
        .bind(table)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let spec: String = row.get(2);
                Ok(Partition {
                    values: from_json(row.get(0), || {
                        format!("partition {spec} of {database}.{table}")
                    })?,
                    location: row.get(1),
                })
            })
            .collect()
    }

    /// Adds partitions in one transaction. With `if_not_exists`, existing ones are skipped;
    /// otherwise any existing one fails the whole call. Returns how many were added.
    pub async fn add_partitions(
        &self,
        table: &Table,
        partitions: &[Partition],
        if_not_exists: bool,
    ) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        let stamp = now();
        for partition in partitions {
            let spec = partition_spec(&table.partition_keys, &partition.values);
            let exists = sqlx::query(self.sql(
                "SELECT 1 FROM mst_partitions WHERE database_name = ? AND table_name = ? AND spec = ?",
            ))
            .bind(&table.database)
            .bind(&table.name)
            .bind(&spec)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            if exists {
                if if_not_exists {
                    continue;
                }
                return Err(MetastoreError::PartitionExists {
                    database: table.database.clone(),
                    table: table.name.clone(),
                    spec,
                });
            }
            sqlx::query(self.sql(
                "INSERT INTO mst_partitions (database_name, table_name, spec, part_values, location, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            ))
            .bind(&table.database)
            .bind(&table.name)
            .bind(&spec)
            .bind(to_json(&partition.values))
            .bind(&partition.location)
            .bind(&stamp)
            .execute(&mut *tx)
            .await?;
            added += 1;
        }
        self.touch_table(&mut tx, &table.database, &table.name, &stamp)
            .await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Drops partitions (given by their values) in one transaction. With `if_exists`,
    /// missing ones are skipped; otherwise any missing one fails the whole call.
    pub async fn drop_partitions(
        &self,
        table: &Table,
        values: &[Vec<String>],
        if_exists: bool,
    ) -> Result<Vec<Partition>> {
        let mut tx = self.pool.begin().await?;
        let mut dropped = Vec::new();
        for vals in values {
            let spec = partition_spec(&table.partition_keys, vals);
            let row = sqlx::query(self.sql(
                "SELECT location FROM mst_partitions WHERE database_name = ? AND table_name = ? AND spec = ?",
            ))
            .bind(&table.database)
            .bind(&table.name)
            .bind(&spec)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                if if_exists {
                    continue;
                }
                return Err(MetastoreError::PartitionNotFound {
                    database: table.database.clone(),
                    table: table.name.clone(),
                    spec,
                });
            };
            sqlx::query(self.sql(
                "DELETE FROM mst_partitions WHERE database_name = ? AND table_name = ? AND spec = ?",
            ))
            .bind(&table.database)
            .bind(&table.name)
            .bind(&spec)
            .execute(&mut *tx)
            .await?;
            dropped.push(Partition {
                values: vals.clone(),
                location: row.get(0),
            });
        }
        self.touch_table(&mut tx, &table.database, &table.name, &now())
            .await?;
        tx.commit().await?;
        Ok(dropped)
    }

    async fn delete_table(&self, tx: &mut Tx<'_>, database: &str, name: &str) -> Result<()> {
        for statement in [
            "DELETE FROM mst_partitions WHERE database_name = ? AND table_name = ?",
            "DELETE FROM mst_tables WHERE database_name = ? AND name = ?",
        ] {
            sqlx::query(self.sql(statement))
                .bind(database)
                .bind(name)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn touch_table(
        &self,
        tx: &mut Tx<'_>,
        database: &str,
        name: &str,
        stamp: &str,
    ) -> Result<()> {
        sqlx::query(
            self.sql("UPDATE mst_tables SET updated_at = ? WHERE database_name = ? AND name = ?"),
        )
        .bind(stamp)
        .bind(database)
        .bind(name)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

pub(crate) type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

macro_rules! table_select {
    ($where:literal) => {
        concat!(
            "SELECT database_name, name, table_type, columns, partition_keys, storage, ",
            "properties, view_sql, statistics, created_at, updated_at FROM mst_tables ",
            $where
        )
    };
}

const TABLE_SELECT_BY_DB: &str = table_select!("WHERE database_name = ? ORDER BY name");
pub(crate) const TABLE_SELECT_ONE: &str = table_select!("WHERE database_name = ? AND name = ?");

fn database_from_row(row: &AnyRow) -> Result<Database> {
    let name: String = row.get("name");
    Ok(Database {
        properties: from_json(row.get("properties"), || format!("database {name}"))?,
        location: row.get("location"),
        description: row.get("description"),
        name,
    })
}

pub(crate) fn table_from_row(row: &AnyRow) -> Result<Table> {
    let database: String = row.get("database_name");
    let name: String = row.get("name");
    let object = || format!("table {database}.{name}");
    let table_type: String = row.get("table_type");
    let statistics: Option<String> = row.get("statistics");
    Ok(Table {
        table_type: TableType::try_from(table_type.as_str()).map_err(|e| {
            MetastoreError::Corrupt {
                object: object(),
                source: serde::de::Error::custom(e),
            }
        })?,
        columns: from_json(row.get("columns"), object)?,
        partition_keys: from_json(row.get("partition_keys"), object)?,
        storage: from_json(row.get("storage"), object)?,
        properties: from_json(row.get("properties"), object)?,
        view_sql: row.get("view_sql"),
        statistics: statistics.map(|s| from_json(&s, object)).transpose()?,
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        database,
        name,
    })
}

/// `text` with its `?` placeholders numbered as PostgreSQL writes them (`$1, $2, ...`).
pub(crate) fn numbered_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut n = 0;
    for c in text.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}
