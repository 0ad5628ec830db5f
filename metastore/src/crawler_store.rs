//! What crawlers keep in the metastore: their definitions, the state that makes re-runs
//! incremental, their runs, and the one-transaction commit of a crawled table with its
//! partitions.
//!
//! The metastore stores a crawler's definition and state as JSON documents whose shape the
//! crawler crate owns; it knows nothing of crawling.

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::model::partition_spec;
use crate::store::{TABLE_SELECT_ONE, Tx, now, table_from_row, to_json};
use crate::{Backend, Metastore, MetastoreError, Partition, Result, Table};

/// How many partitions one INSERT statement carries.
const PARTITION_BATCH: usize = 200;

/// A stored crawler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawlerRecord {
    pub name: String,
    /// The definition, a JSON document.
    pub definition: String,
    /// What the last run saw, a JSON document; `None` before the first run.
    pub state: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// One run of a crawler, as `system.crawler.runs` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CrawlerRun {
    pub crawler: String,
    pub run_id: String,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `RUNNING`, `SUCCEEDED`, `SUCCEEDED_WITH_ERRORS` or `FAILED`.
    pub status: String,
    pub objects_listed: u64,
    pub objects_read: u64,
    pub tables_created: u64,
    pub tables_updated: u64,
    pub tables_deleted: u64,
    pub partitions_added: u64,
    pub partitions_removed: u64,
    /// One problem per line.
    pub errors: String,
    /// Grouping decisions and schema changes, one per line.
    pub log: String,
}

/// A crawled table to write: created or updated, with partitions added and removed, all in
/// one transaction.
#[derive(Debug, Clone)]
pub struct TableChange {
    pub table: Table,
    /// Create the table (it must not exist) rather than update it (it must exist).
    pub create: bool,
    /// Partitions to add; ones that already exist are left as they are.
    pub add: Vec<Partition>,
    /// Values of partitions to remove; missing ones are ignored.
    pub remove: Vec<Vec<String>>,
}

/// What [`Metastore::apply_table_change`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeCounts {
    pub partitions_added: usize,
    pub partitions_removed: usize,
}

fn crawler_from_row(row: &AnyRow) -> CrawlerRecord {
    CrawlerRecord {
        name: row.get("name"),
        definition: row.get("definition"),
        state: row.get("state"),
        created_at: row.get("created_at"),
    }
}

fn run_from_row(row: &AnyRow) -> CrawlerRun {
    let count = |name: &str| row.get::<i64, _>(name).max(0) as u64;
    CrawlerRun {
        crawler: row.get("crawler"),
        run_id: row.get("run_id"),
        started_at: row.get("started_at"),
        finished_at: row.get("finished_at"),
        status: row.get("status"),
        objects_listed: count("objects_listed"),
        objects_read: count("objects_read"),
        tables_created: count("tables_created"),
        tables_updated: count("tables_updated"),
        tables_deleted: count("tables_deleted"),
        partitions_added: count("partitions_added"),
        partitions_removed: count("partitions_removed"),
        errors: row.get("errors"),
        log: row.get("log"),
    }
}

const RUN_COLUMNS: &str = "crawler, run_id, started_at, finished_at, status, objects_listed, \
     objects_read, tables_created, tables_updated, tables_deleted, partitions_added, \
     partitions_removed, errors, log";

impl Metastore {
    /// A statement built at run time from constant pieces and `?` placeholders, numbered
    /// for PostgreSQL.
    fn dynamic_sql(&self, text: String) -> AssertSqlSafe<String> {
        if self.backend() != Backend::Postgres {
            return AssertSqlSafe(text);
        }
        AssertSqlSafe(crate::store::numbered_placeholders(&text))
    }

    /// Stores a new crawler. With `replace` an existing one of the same name gets the new
    /// definition (and keeps its state); otherwise an existing one is kept and false
    /// returned.
    pub async fn put_crawler(&self, name: &str, definition: &str, replace: bool) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query(self.sql("SELECT 1 FROM mst_crawlers WHERE name = ?"))
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let stamp = now();
        if exists {
            if !replace {
                return Ok(false);
            }
            sqlx::query(
                self.sql("UPDATE mst_crawlers SET definition = ?, updated_at = ? WHERE name = ?"),
            )
            .bind(definition)
            .bind(&stamp)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(self.sql(
                "INSERT INTO mst_crawlers (name, definition, state, running_since, created_at, \
                 updated_at) VALUES (?, ?, NULL, NULL, ?, ?)",
            ))
            .bind(name)
            .bind(definition)
            .bind(&stamp)
            .bind(&stamp)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// One crawler, or `None`.
    pub async fn get_crawler(&self, name: &str) -> Result<Option<CrawlerRecord>> {
        let row = sqlx::query(
            self.sql("SELECT name, definition, state, created_at FROM mst_crawlers WHERE name = ?"),
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(crawler_from_row))
    }

    /// All crawlers, by name.
    pub async fn list_crawlers(&self) -> Result<Vec<CrawlerRecord>> {
        let rows = sqlx::query(
            self.sql("SELECT name, definition, state, created_at FROM mst_crawlers ORDER BY name"),
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(crawler_from_row).collect())
    }

    /// Drops a crawler (its runs stay in the run history). False when it did not exist.
    pub async fn drop_crawler(&self, name: &str) -> Result<bool> {
        let done = sqlx::query(self.sql("DELETE FROM mst_crawlers WHERE name = ?"))
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Claims the crawler for a run, across processes: true when no other run holds it, or
    /// the other claim started before `stale_before` (RFC 3339; its process is taken to
    /// have stopped, and its `RUNNING` records are marked `FAILED`).
    pub async fn claim_crawler(&self, name: &str, stale_before: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let stamp = now();
        let claimed = sqlx::query(self.sql(
            "UPDATE mst_crawlers SET running_since = ? \
             WHERE name = ? AND (running_since IS NULL OR running_since < ?)",
        ))
        .bind(&stamp)
        .bind(name)
        .bind(stale_before)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            sqlx::query(self.sql(
                "UPDATE mst_crawler_runs SET status = 'FAILED', finished_at = ?, \
                 errors = 'interrupted: the process running it stopped' \
                 WHERE crawler = ? AND status = 'RUNNING'",
            ))
            .bind(&stamp)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Ends a claim taken with [`Self::claim_crawler`].
    pub async fn release_crawler(&self, name: &str) -> Result<()> {
        sqlx::query(self.sql("UPDATE mst_crawlers SET running_since = NULL WHERE name = ?"))
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces what the crawler's last run saw.
    pub async fn set_crawler_state(&self, name: &str, state: &str) -> Result<()> {
        sqlx::query(self.sql("UPDATE mst_crawlers SET state = ?, updated_at = ? WHERE name = ?"))
            .bind(state)
            .bind(now())
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a run: inserted when new, otherwise updated (progress and the end of a run).
    pub async fn record_crawler_run(&self, run: &CrawlerRun) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(self.sql("DELETE FROM mst_crawler_runs WHERE crawler = ? AND run_id = ?"))
            .bind(&run.crawler)
            .bind(&run.run_id)
            .execute(&mut *tx)
            .await?;
        let insert = format!(
            "INSERT INTO mst_crawler_runs ({RUN_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        let count = |n: u64| n.min(i64::MAX as u64) as i64;
        sqlx::query(self.dynamic_sql(insert))
            .bind(&run.crawler)
            .bind(&run.run_id)
            .bind(&run.started_at)
            .bind(&run.finished_at)
            .bind(&run.status)
            .bind(count(run.objects_listed))
            .bind(count(run.objects_read))
            .bind(count(run.tables_created))
            .bind(count(run.tables_updated))
            .bind(count(run.tables_deleted))
            .bind(count(run.partitions_added))
            .bind(count(run.partitions_removed))
            .bind(&run.errors)
            .bind(&run.log)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every recorded run, oldest first.
    pub async fn list_crawler_runs(&self) -> Result<Vec<CrawlerRun>> {
        let query =
            format!("SELECT {RUN_COLUMNS} FROM mst_crawler_runs ORDER BY started_at, run_id");
        let rows = sqlx::query(self.dynamic_sql(query))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(run_from_row).collect())
    }

    /// Creates or updates a crawled table and adds and removes its partitions, all in one
    /// transaction: readers see the table before or after, never half-way. Partitions are
    /// inserted [`PARTITION_BATCH`] to a statement.
    pub async fn apply_table_change(&self, change: &TableChange) -> Result<ChangeCounts> {
        let table = &change.table;
        let mut tx = self.pool.begin().await?;
        let existing = sqlx::query(self.sql(TABLE_SELECT_ONE))
            .bind(&table.database)
            .bind(&table.name)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(table_from_row)
            .transpose()?;
        let stamp = now();
        match (change.create, existing) {
            (true, Some(_)) => {
                return Err(MetastoreError::TableExists {
                    database: table.database.clone(),
                    table: table.name.clone(),
                });
            }
            (false, None) => {
                return Err(MetastoreError::TableNotFound {
                    database: table.database.clone(),
                    table: table.name.clone(),
                });
            }
            (true, None) => {
                let db_exists = sqlx::query(self.sql("SELECT 1 FROM mst_databases WHERE name = ?"))
                    .bind(&table.database)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if !db_exists {
                    return Err(MetastoreError::DatabaseNotFound(table.database.clone()));
                }
                sqlx::query(self.sql(
                    "INSERT INTO mst_tables (database_name, name, table_type, columns, \
                     partition_keys, storage, properties, view_sql, statistics, created_at, \
                     updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
                ))
                .bind(&table.database)
                .bind(&table.name)
                .bind(table.table_type.as_hive_str())
                .bind(to_json(&table.columns))
                .bind(to_json(&table.partition_keys))
                .bind(to_json(&table.storage))
                .bind(to_json(&table.properties))
                .bind(&stamp)
                .bind(&stamp)
                .execute(&mut *tx)
                .await?;
            }
            (false, Some(_)) => {
                sqlx::query(self.sql(
                    "UPDATE mst_tables SET columns = ?, partition_keys = ?, storage = ?, \
                     properties = ?, updated_at = ? WHERE database_name = ? AND name = ?",
                ))
                .bind(to_json(&table.columns))
                .bind(to_json(&table.partition_keys))
                .bind(to_json(&table.storage))
                .bind(to_json(&table.properties))
                .bind(&stamp)
                .bind(&table.database)
                .bind(&table.name)
                .execute(&mut *tx)
                .await?;
            }
        }
        let counts = self.change_partitions(&mut tx, change, &stamp).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn change_partitions(
        &self,
        tx: &mut Tx<'_>,
        change: &TableChange,
        stamp: &str,
    ) -> Result<ChangeCounts> {
        let table = &change.table;
        let mut present: HashSet<String> = sqlx::query(
            self.sql("SELECT spec FROM mst_partitions WHERE database_name = ? AND table_name = ?"),
        )
        .bind(&table.database)
        .bind(&table.name)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect();

        let mut counts = ChangeCounts::default();
        let remove: Vec<String> = change
            .remove
            .iter()
            .map(|values| partition_spec(&table.partition_keys, values))
            .filter(|spec| present.remove(spec))
            .collect();
        for chunk in remove.chunks(PARTITION_BATCH) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let delete = format!(
                "DELETE FROM mst_partitions WHERE database_name = ? AND table_name = ? \
                 AND spec IN ({marks})"
            );
            let mut query = sqlx::query(self.dynamic_sql(delete))
                .bind(&table.database)
                .bind(&table.name);
            for spec in chunk {
                query = query.bind(spec);
            }
            counts.partitions_removed += query.execute(&mut **tx).await?.rows_affected() as usize;
        }

        let mut add = Vec::new();
        for partition in &change.add {
            let spec = partition_spec(&table.partition_keys, &partition.values);
            if present.insert(spec.clone()) {
                add.push((spec, partition));
            }
        }
        for chunk in add.chunks(PARTITION_BATCH) {
            let rows = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let insert = format!(
                "INSERT INTO mst_partitions (database_name, table_name, spec, part_values, \
                 location, created_at) VALUES {rows}"
            );
            let mut query = sqlx::query(self.dynamic_sql(insert));
            for (spec, partition) in chunk {
                query = query
                    .bind(&table.database)
                    .bind(&table.name)
                    .bind(spec)
                    .bind(to_json(&partition.values))
                    .bind(&partition.location)
                    .bind(stamp);
            }
            query.execute(&mut **tx).await?;
            counts.partitions_added += chunk.len();
        }
        Ok(counts)
    }
}
