//! A live source: the connection pool of one catalog, through datafusion-table-providers'
//! pools and type mapping.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion_table_providers::mysql::conn::MySQLConnection;
use datafusion_table_providers::postgres::conn::PostgresConnection;
use datafusion_table_providers::sql::arrow_sql_gen::mysql::map_column_to_data_type;
use datafusion_table_providers::sql::db_connection_pool::DbConnectionPool;
use datafusion_table_providers::sql::db_connection_pool::dbconnection::{
    self, AsyncDbConnection, get_schema,
};
use datafusion_table_providers::sql::db_connection_pool::mysqlpool::MySQLConnectionPool;
use datafusion_table_providers::sql::db_connection_pool::postgrespool::PostgresConnectionPool;
use datafusion_table_providers::{SOURCE_TYPE_METADATA_KEY, UnsupportedTypeAction};
use futures::{StreamExt, TryStreamExt};
use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;
use secrecy::SecretString;

use crate::pushdown::Dialect;
use crate::{CatalogConfig, ConnectorError, ConnectorKind, Result};

enum Pool {
    Postgres(Arc<PostgresConnectionPool>),
    MySql(Arc<MySQLConnectionPool>),
}

/// One catalog's connection pool and what is needed to talk to it.
pub struct Source {
    config: CatalogConfig,
    pool: Pool,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("catalog", &self.config.name)
            .field("kind", &self.config.kind)
            .field("address", &self.config.address())
            .finish()
    }
}

impl Source {
    /// Connects (checking the credentials with one round trip) within the catalog's
    /// `connect_timeout`.
    pub async fn connect(config: CatalogConfig) -> Result<Self> {
        let timeout = config.connect_timeout()?;
        let params = pool_params(&config)?;
        let connecting = async {
            match config.kind {
                ConnectorKind::Postgres => {
                    // Every type is read, as text where there is no Arrow mapping;
                    // `table_schema` then applies the catalog's `unsupported_types`.
                    let action = UnsupportedTypeAction::String;
                    PostgresConnectionPool::new(params)
                        .await
                        .map(|pool| {
                            Pool::Postgres(Arc::new(pool.with_unsupported_type_action(action)))
                        })
                        .map_err(|e| connect_error(&config, e.to_string()))
                }
                ConnectorKind::MySql => MySQLConnectionPool::new(params)
                    .await
                    .map(|pool| Pool::MySql(Arc::new(pool)))
                    .map_err(|e| connect_error(&config, e.to_string())),
            }
        };
        let pool = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| ConnectorError::ConnectTimeout {
                connector: config.kind.name(),
                catalog: config.name.clone(),
                host: config.address(),
                seconds: timeout.as_secs().max(1),
            })??;
        Ok(Self { config, pool })
    }

    pub fn config(&self) -> &CatalogConfig {
        &self.config
    }

    pub fn dialect(&self) -> Dialect {
        Dialect::new(self.config.kind)
    }

    fn remote(&self, message: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::Remote {
            connector: self.config.kind.name(),
            catalog: self.config.name.clone(),
            message: message.to_string(),
        }
    }

    /// Runs `sql` and streams its rows as Arrow batches of `schema` (the types the table
    /// was planned with; a column whose type no longer casts is an error).
    pub async fn query(&self, sql: &str, schema: SchemaRef) -> Result<SendableRecordBatchStream> {
        // A scan that needs no columns (`count(*)`) still needs its rows counted.
        let wire = (!schema.fields().is_empty()).then(|| wire_schema(&schema));
        let sql = sql.to_string();
        let connect_error = |e: &dyn std::fmt::Display| self.remote(format!("{e} (query: {sql})"));
        // Armed from creation: if this future is dropped while the source works on the
        // statement (before its first row, say), the statement is cancelled.
        let mut statement: Box<dyn RemoteStatement> = match &self.pool {
            Pool::Postgres(pool) => Box::new(PostgresStatement {
                conn: Some(pool.connect_direct().await.map_err(|e| connect_error(&e))?),
                done: false,
            }),
            Pool::MySql(pool) => {
                let conn = pool.connect_direct().await.map_err(|e| connect_error(&e))?;
                let id = conn.conn.lock().await.id();
                Box::new(MySqlStatement {
                    conn: Some(conn),
                    id,
                    pool: Arc::clone(pool),
                    done: false,
                })
            }
        };
        let stream = match statement.start(&sql, wire).await {
            Ok(stream) => stream,
            Err(e) => {
                statement.finish();
                return Err(connect_error(&e));
            }
        };
        let target = Arc::clone(&schema);
        let connector = self.config.kind.name();
        let catalog = self.config.name.clone();
        let batches = CancelOnDrop {
            inner: stream,
            statement: Some(statement),
        }
        .map(move |batch| {
            conform(batch?, &target).map_err(|detail| {
                DataFusionError::from(ConnectorError::Changed {
                    connector,
                    catalog: catalog.clone(),
                    detail: format!("{detail} (query: {sql})"),
                })
            })
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    /// Runs `sql` (which must return one text column) and collects that column.
    async fn strings(&self, sql: &str) -> Result<Vec<String>> {
        let schema = Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8, true)]));
        let batches: Vec<RecordBatch> = self
            .query(sql, schema)
            .await?
            .try_collect()
            .await
            .map_err(|e| self.remote(e))?;
        let mut out = Vec::new();
        for batch in batches {
            let column = batch.column(0);
            let names = column
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| self.remote("a catalog listing did not return text"))?;
            out.extend(names.iter().flatten().map(str::to_string));
        }
        Ok(out)
    }

    /// The schemas (PostgreSQL) or databases (MySQL) the catalog shows.
    pub async fn schemas(&self) -> Result<Vec<String>> {
        self.strings(
            self.dialect()
                .list_schemas_sql(self.config.database())
                .as_str(),
        )
        .await
    }

    /// Tables and views of `schema`.
    pub async fn tables(&self, schema: &str) -> Result<Vec<String>> {
        self.strings(&self.dialect().list_tables_sql(schema)).await
    }

    /// The Arrow schema of `schema.table`, with each column's source type in its metadata.
    pub async fn table_schema(&self, schema: &str, table: &str) -> Result<SchemaRef> {
        let reference = TableReference::partial(schema, table);
        let result = match &self.pool {
            Pool::Postgres(pool) => schema_of(pool.as_ref(), &reference).await,
            Pool::MySql(pool) => schema_of(pool.as_ref(), &reference).await,
        };
        match result {
            Ok(found) if found.fields().is_empty() => Err(self.not_found(schema_name(&reference))),
            Ok(found) if self.config.kind == ConnectorKind::MySql => {
                self.with_mysql_types(found, schema, table).await
            }
            Ok(found) => self.postgres_text_fallbacks(found, schema, table),
            Err(dbconnection::Error::UndefinedTable { .. }) => {
                Err(self.not_found(schema_name(&reference)))
            }
            Err(e) => {
                let message = e.to_string();
                // MySQL's mapping refuses a whole table for one column type it does not
                // parse (`year(4)`, as MariaDB spells YEAR): Quarry maps the declared types,
                // and names a type that has no mapping.
                if self.config.kind == ConnectorKind::MySql
                    && message.contains(MYSQL_UNSUPPORTED_TYPE)
                {
                    return self.mysql_declared_schema(schema, table).await;
                }
                Err(self.remote(format!("table \"{schema}.{table}\": {message}")))
            }
        }
    }

    /// Predicates that cut `schema.table` into at most `n` disjoint pieces that together
    /// hold every row, or none when the table cannot be cut (a view, no usable key, empty).
    /// PostgreSQL tables are cut by ctid (block) ranges, MySQL tables by ranges of an
    /// integer primary key. Each piece is read by its own statement: the pieces are not
    /// one snapshot of the table.
    pub async fn split_predicates(
        &self,
        schema: &str,
        table: &str,
        n: usize,
    ) -> Result<Vec<String>> {
        if n < 2 {
            return Ok(vec![]);
        }
        let dialect = self.dialect();
        let (s, t) = (
            dialect.string_literal(schema),
            dialect.string_literal(table),
        );
        match self.config.kind {
            ConnectorKind::Postgres => {
                let pages = self
                    .strings(&format!(
                        "SELECT (pg_relation_size(c.oid) / current_setting('block_size')::bigint)::text AS name \
                         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace \
                         WHERE ns.nspname = {s} AND c.relname = {t} AND c.relkind = 'r'"
                    ))
                    .await?;
                let pages: u64 = pages.first().and_then(|p| p.parse().ok()).unwrap_or(0);
                Ok(ranges(0, pages, n)
                    .into_iter()
                    .map(|(low, high)| match high {
                        Some(high) => {
                            format!("(ctid >= '({low},0)'::tid AND ctid < '({high},0)'::tid)")
                        }
                        None => format!("(ctid >= '({low},0)'::tid)"),
                    })
                    .collect())
            }
            ConnectorKind::MySql => {
                let keys = self
                    .strings(&format!(
                        "SELECT CAST(k.COLUMN_NAME AS CHAR(256)) AS name FROM INFORMATION_SCHEMA.KEY_COLUMN_USAGE k \
                         JOIN INFORMATION_SCHEMA.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA \
                         AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME \
                         WHERE k.TABLE_SCHEMA = {s} AND k.TABLE_NAME = {t} AND k.CONSTRAINT_NAME = 'PRIMARY' \
                         AND c.DATA_TYPE IN ('tinyint', 'smallint', 'mediumint', 'int', 'bigint')"
                    ))
                    .await?;
                let total_keys = self
                    .strings(&format!(
                        "SELECT CAST(COUNT(*) AS CHAR) AS name FROM INFORMATION_SCHEMA.KEY_COLUMN_USAGE \
                         WHERE TABLE_SCHEMA = {s} AND TABLE_NAME = {t} AND CONSTRAINT_NAME = 'PRIMARY'"
                    ))
                    .await?;
                let ([key], ["1"]) = (
                    keys.as_slice(),
                    total_keys
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .as_slice(),
                ) else {
                    return Ok(vec![]);
                };
                let column = dialect.quote_ident(key);
                let bounds = self
                    .strings(&format!(
                        "SELECT CAST(CONCAT(MIN({column}), ':', MAX({column})) AS CHAR(64)) AS name FROM {}",
                        dialect.table(schema, table)
                    ))
                    .await?;
                let Some((min, max)) = bounds.first().and_then(|b| {
                    let (min, max) = b.split_once(':')?;
                    Some((min.parse::<i128>().ok()?, max.parse::<i128>().ok()?))
                }) else {
                    return Ok(vec![]);
                };
                let pieces = ranges(0, (max - min + 1) as u64, n);
                Ok(pieces
                    .iter()
                    .enumerate()
                    .map(|(i, (low, high))| {
                        let low = min + *low as i128;
                        match (i, high) {
                            (0, Some(high)) => format!("({column} < {})", min + *high as i128),
                            (_, Some(high)) => {
                                format!(
                                    "({column} >= {low} AND {column} < {})",
                                    min + *high as i128
                                )
                            }
                            (_, None) => format!("({column} >= {low})"),
                        }
                    })
                    .collect())
            }
        }
    }

    /// The column names of `schema.table`, in order.
    pub async fn column_names(&self, schema: &str, table: &str) -> Result<Vec<String>> {
        let dialect = self.dialect();
        let name = match self.config.kind {
            ConnectorKind::Postgres => "column_name::text",
            ConnectorKind::MySql => "CAST(COLUMN_NAME AS CHAR(256))",
        };
        self.strings(&format!(
            "SELECT {name} AS name FROM information_schema.columns \
             WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
            dialect.string_literal(schema),
            dialect.string_literal(table)
        ))
        .await
    }

    /// PostgreSQL columns read as text only because their type has no Arrow mapping
    /// (`tsvector`, `xml`, ...): refused by name, or with `unsupported_types = 'text'`
    /// marked so the scan asks the server for their text form.
    fn postgres_text_fallbacks(
        &self,
        found: SchemaRef,
        schema: &str,
        table: &str,
    ) -> Result<SchemaRef> {
        let as_text = self.config.read_unsupported_as_text()?;
        let mut fields = Vec::with_capacity(found.fields().len());
        for field in found.fields() {
            let source = field
                .metadata()
                .get(SOURCE_TYPE_METADATA_KEY)
                .map(|t| t.to_ascii_lowercase())
                .unwrap_or_default();
            let fallback = matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8)
                && !POSTGRES_STRING_TYPES.iter().any(|t| source.starts_with(t));
            if !fallback {
                fields.push(field.as_ref().clone());
                continue;
            }
            if !as_text {
                return Err(self.unsupported(schema, table, field.name(), source));
            }
            let mut metadata = field.metadata().clone();
            metadata.insert(READ_AS_TEXT.to_string(), "true".to_string());
            fields.push(field.as_ref().clone().with_metadata(metadata));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// MySQL's driver mapping does not keep the declared types: read them, keep them in
    /// the fields' metadata, and read `tinyint(1)` (MySQL's BOOLEAN) as a boolean.
    async fn with_mysql_types(
        &self,
        found: SchemaRef,
        schema: &str,
        table: &str,
    ) -> Result<SchemaRef> {
        let declared: HashMap<String, String> = self
            .mysql_declared_types(schema, table)
            .await?
            .into_iter()
            .collect();
        let fields = found
            .fields()
            .iter()
            .map(|field| {
                let Some(declared) = declared.get(field.name()) else {
                    return field.as_ref().clone();
                };
                let mut field = field.as_ref().clone().with_metadata(HashMap::from([(
                    SOURCE_TYPE_METADATA_KEY.to_string(),
                    declared.clone(),
                )]));
                if declared == MYSQL_BOOLEAN {
                    field = field.with_data_type(DataType::Boolean);
                }
                field
            })
            .collect::<Vec<_>>();
        Ok(Arc::new(Schema::new(fields)))
    }

    /// A MySQL table's schema from its declared column types, mapped to the Arrow types
    /// datafusion-table-providers reads them as. A type without a mapping is refused by
    /// name, or read as text with `unsupported_types = 'text'`.
    async fn mysql_declared_schema(&self, schema: &str, table: &str) -> Result<SchemaRef> {
        let as_text = self.config.read_unsupported_as_text()?;
        let mut fields = Vec::new();
        for (column, declared) in self.mysql_declared_types(schema, table).await? {
            let mut metadata =
                HashMap::from([(SOURCE_TYPE_METADATA_KEY.to_string(), declared.clone())]);
            let data_type = match mysql_arrow_type(&declared) {
                Some(_) if declared == MYSQL_BOOLEAN => DataType::Boolean,
                Some(data_type) => data_type,
                None if as_text => {
                    metadata.insert(READ_AS_TEXT.to_string(), "true".to_string());
                    DataType::Utf8
                }
                None => {
                    return Err(self.unsupported(schema, table, &column, declared));
                }
            };
            fields.push(Field::new(column, data_type, true).with_metadata(metadata));
        }
        if fields.is_empty() {
            return Err(self.not_found(format!("{schema}.{table}")));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// A MySQL table's columns and their declared types (`COLUMN_TYPE`, lower case), in
    /// column order.
    async fn mysql_declared_types(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Vec<(String, String)>> {
        let dialect = self.dialect();
        let sql = format!(
            "SELECT CAST(CONCAT(COLUMN_NAME, ':', COLUMN_TYPE) AS CHAR(1024)) AS name \
             FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} \
             ORDER BY ORDINAL_POSITION",
            dialect.string_literal(schema),
            dialect.string_literal(table)
        );
        Ok(self
            .strings(&sql)
            .await?
            .into_iter()
            .filter_map(|entry| {
                let (column, data_type) = entry.rsplit_once(':')?;
                Some((column.to_string(), data_type.to_ascii_lowercase()))
            })
            .collect())
    }

    /// `schema.table` cannot be read: `column`'s type `data_type` has no Arrow mapping.
    fn unsupported(
        &self,
        schema: &str,
        table: &str,
        column: &str,
        data_type: String,
    ) -> ConnectorError {
        ConnectorError::UnsupportedType {
            connector: self.config.kind.name(),
            catalog: self.config.name.clone(),
            table: format!("{schema}.{table}"),
            column: column.to_string(),
            data_type,
        }
    }

    fn not_found(&self, table: String) -> ConnectorError {
        ConnectorError::TableNotFound {
            connector: self.config.kind.name(),
            catalog: self.config.name.clone(),
            table,
        }
    }
}

/// `[start, end)` cut into at most `n` ranges of near-equal size; the last is open-ended
/// (`None`) so rows added past `end` are still read. Empty when there is nothing to cut.
fn ranges(start: u64, end: u64, n: usize) -> Vec<(u64, Option<u64>)> {
    let size = end.saturating_sub(start);
    let n = (n as u64).min(size);
    if n < 2 {
        return vec![];
    }
    (0..n)
        .map(|i| {
            let low = start + size * i / n;
            let high = (i + 1 < n).then(|| start + size * (i + 1) / n);
            (low, high)
        })
        .collect()
}

/// The Arrow type datafusion-table-providers reads a MySQL column of `declared` type
/// (`COLUMN_TYPE`, lower case: `int(10) unsigned`, `decimal(12,3)`, `year(4)`) as, or `None`
/// for a type it cannot read (`geometry`).
fn mysql_arrow_type(declared: &str) -> Option<DataType> {
    let name = declared
        .split(|c: char| c == '(' || c.is_whitespace())
        .next()
        .unwrap_or_default();
    let column_type = match name {
        "tinyint" | "bool" | "boolean" => ColumnType::MYSQL_TYPE_TINY,
        "smallint" => ColumnType::MYSQL_TYPE_SHORT,
        "mediumint" => ColumnType::MYSQL_TYPE_INT24,
        "int" | "integer" => ColumnType::MYSQL_TYPE_LONG,
        "bigint" => ColumnType::MYSQL_TYPE_LONGLONG,
        "decimal" | "numeric" | "dec" | "fixed" => ColumnType::MYSQL_TYPE_NEWDECIMAL,
        "float" => ColumnType::MYSQL_TYPE_FLOAT,
        "double" | "real" => ColumnType::MYSQL_TYPE_DOUBLE,
        "date" => ColumnType::MYSQL_TYPE_DATE,
        "datetime" => ColumnType::MYSQL_TYPE_DATETIME,
        "timestamp" => ColumnType::MYSQL_TYPE_TIMESTAMP,
        "time" => ColumnType::MYSQL_TYPE_TIME,
        "year" => ColumnType::MYSQL_TYPE_YEAR,
        "bit" => ColumnType::MYSQL_TYPE_BIT,
        "json" => ColumnType::MYSQL_TYPE_JSON,
        "char" | "binary" | "enum" | "set" => ColumnType::MYSQL_TYPE_STRING,
        "varchar" | "varbinary" => ColumnType::MYSQL_TYPE_VAR_STRING,
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" => ColumnType::MYSQL_TYPE_BLOB,
        _ => return None,
    };
    let (precision, scale) = match column_type {
        ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            let inside = declared.split_once('(')?.1.split_once(')')?.0;
            let (p, s) = inside.split_once(',').unwrap_or((inside, "0"));
            (Some(p.trim().parse().ok()?), Some(s.trim().parse().ok()?))
        }
        _ => (None, None),
    };
    map_column_to_data_type(
        column_type,
        name.ends_with("binary") || name.ends_with("blob"),
        name == "enum",
        declared.contains("unsigned"),
        name.starts_with("long"),
        precision,
        scale,
    )
}

/// Field metadata of a column the scan reads as `CAST(column AS text)`.
pub(crate) const READ_AS_TEXT: &str = "quarry.read_as_text";

/// PostgreSQL types whose values are text in Arrow (`Utf8`) by their own mapping.
const POSTGRES_STRING_TYPES: &[&str] = &[
    "text",
    "character",
    "varchar",
    "char",
    "bpchar",
    "name",
    "citext",
    "json",
    "jsonb",
    "uuid",
];

/// How datafusion-table-providers' MySQL mapping says it refused a column's type
/// ("Unsupported data type 'year(4)' for field 'made'").
const MYSQL_UNSUPPORTED_TYPE: &str = "Unsupported data type '";

/// A PostgreSQL statement in progress. Dropped before it ended (the query was cancelled,
/// timed out or its client went away), it asks the server to cancel the statement instead
/// of letting it run on. It holds the pooled connection meanwhile, so no other statement
/// runs on that connection until this one is over.
struct PostgresStatement {
    conn: Option<PostgresConnection>,
    done: bool,
}

impl Drop for PostgresStatement {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(conn) = self.conn.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let token = conn.conn.cancel_token();
                if let Err(e) = token.cancel_query(tokio_postgres::NoTls).await {
                    tracing::warn!(error = %e, "could not cancel a PostgreSQL statement");
                }
                // A cancel that arrives late hits this statement, not the next user's
                // of the pooled connection.
                let _ = conn.conn.simple_query("SELECT 1").await;
            });
        }
    }
}

/// A statement in progress in a source; dropped before [`RemoteStatement::finish`], it
/// cancels itself in the source.
#[async_trait::async_trait]
trait RemoteStatement: Send {
    /// Sends the statement; the stream yields batches of `schema` (or of what the source
    /// returns, when `None`).
    async fn start(
        &self,
        sql: &str,
        schema: Option<SchemaRef>,
    ) -> std::result::Result<SendableRecordBatchStream, BoxedError>;

    fn finish(&mut self);
}

type BoxedError = Box<dyn std::error::Error + Send + Sync>;

/// The connection a statement holds until it ends (taken only by `Drop`).
fn held<T>(conn: &Option<T>) -> &T {
    conn.as_ref()
        .expect("a statement holds its connection until it is dropped")
}

#[async_trait::async_trait]
impl RemoteStatement for PostgresStatement {
    async fn start(
        &self,
        sql: &str,
        schema: Option<SchemaRef>,
    ) -> std::result::Result<SendableRecordBatchStream, BoxedError> {
        held(&self.conn).query_arrow(sql, &[], schema).await
    }

    fn finish(&mut self) {
        self.done = true;
    }
}

/// A MySQL statement in progress: dropped before it ended, it is killed
/// (`KILL QUERY <connection id>` from another connection of the pool).
struct MySqlStatement {
    conn: Option<MySQLConnection>,
    id: u32,
    pool: Arc<MySQLConnectionPool>,
    done: bool,
}

#[async_trait::async_trait]
impl RemoteStatement for MySqlStatement {
    async fn start(
        &self,
        sql: &str,
        schema: Option<SchemaRef>,
    ) -> std::result::Result<SendableRecordBatchStream, BoxedError> {
        held(&self.conn).query_arrow(sql, &[], schema).await
    }

    fn finish(&mut self) {
        self.done = true;
    }
}

impl Drop for MySqlStatement {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (conn, id, pool) = (self.conn.take(), self.id, Arc::clone(&self.pool));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let killed = async {
                    let killer = pool.connect_direct().await.map_err(|e| e.to_string())?;
                    let mut killer = killer.conn.lock().await;
                    killer
                        .query_drop(format!("KILL QUERY {id}"))
                        .await
                        .map_err(|e| e.to_string())
                };
                if let Err(e) = killed.await {
                    tracing::warn!(error = %e, "could not kill a MySQL statement");
                }
                // Back to the pool only once its statement is over.
                drop(conn);
            });
        }
    }
}

/// A remote result with its statement, which learns here whether it ended.
struct CancelOnDrop {
    inner: SendableRecordBatchStream,
    statement: Option<Box<dyn RemoteStatement>>,
}

impl futures::Stream for CancelOnDrop {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let next = self.inner.as_mut().poll_next(cx);
        if let std::task::Poll::Ready(None) = next
            && let Some(statement) = self.statement.as_mut()
        {
            statement.finish();
        }
        next
    }
}

/// How MySQL declares BOOLEAN columns.
const MYSQL_BOOLEAN: &str = "tinyint(1)";

/// The schema the driver is asked to produce: booleans that MySQL stores as `tinyint(1)`
/// arrive as integers and are cast by [`conform`].
fn wire_schema(schema: &SchemaRef) -> SchemaRef {
    let is_mysql_boolean = |f: &Field| {
        f.data_type() == &DataType::Boolean
            && f.metadata()
                .get(SOURCE_TYPE_METADATA_KEY)
                .map(String::as_str)
                == Some(MYSQL_BOOLEAN)
    };
    if !schema.fields().iter().any(|f| is_mysql_boolean(f)) {
        return Arc::clone(schema);
    }
    let fields = schema
        .fields()
        .iter()
        .map(|f| {
            if is_mysql_boolean(f) {
                f.as_ref().clone().with_data_type(DataType::Int8)
            } else {
                f.as_ref().clone()
            }
        })
        .collect::<Vec<_>>();
    Arc::new(Schema::new(fields))
}

fn schema_name(reference: &TableReference) -> String {
    match reference.schema() {
        Some(schema) => format!("{schema}.{}", reference.table()),
        None => reference.table().to_string(),
    }
}

fn connect_error(config: &CatalogConfig, message: String) -> ConnectorError {
    // The pools' messages end with advice for their own users; keep the first line.
    let message = message.lines().next().unwrap_or_default().to_string();
    ConnectorError::Connect {
        connector: config.kind.name(),
        catalog: config.name.clone(),
        host: config.address(),
        message,
    }
}

/// The parameters datafusion-table-providers' pools take.
fn pool_params(config: &CatalogConfig) -> Result<HashMap<String, SecretString>> {
    let mut params: HashMap<String, SecretString> = HashMap::new();
    let mut put = |k: &str, v: &str| {
        params.insert(k.to_string(), SecretString::from(v.to_string()));
    };
    put("host", config.host());
    put("user", config.user());
    if let Some(db) = config.database() {
        put("db", db);
    }
    let port = config.port()?.to_string();
    match config.kind {
        ConnectorKind::Postgres => {
            put("port", &port);
            put("sslmode", config.sslmode().unwrap_or("prefer"));
        }
        ConnectorKind::MySql => {
            put("tcp_port", &port);
            put("sslmode", config.sslmode().unwrap_or("preferred"));
        }
    }
    if let Some(password) = &config.password {
        params.insert("pass".to_string(), password.clone());
    }
    Ok(params)
}

async fn schema_of<T: 'static, P: 'static>(
    pool: &(dyn DbConnectionPool<T, P> + Send + Sync),
    reference: &TableReference,
) -> std::result::Result<SchemaRef, dbconnection::Error> {
    let conn = pool
        .connect()
        .await
        .map_err(|e| dbconnection::Error::UnableToGetSchema { source: e })?;
    get_schema(conn, reference).await
}

/// Gives a batch from the source exactly the planned schema: same column count, types cast
/// where the driver chose a compatible representation. A value the planned type cannot hold
/// (the column's type changed in the source since planning) is an error, never a NULL.
fn conform(batch: RecordBatch, target: &SchemaRef) -> std::result::Result<RecordBatch, String> {
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    if target.fields().is_empty() {
        return RecordBatch::try_new_with_options(Arc::clone(target), vec![], &options)
            .map_err(|e| e.to_string());
    }
    if batch.num_columns() != target.fields().len() {
        return Err(format!(
            "it returned {} columns, {} were planned",
            batch.num_columns(),
            target.fields().len()
        ));
    }
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (column, field) in batch.columns().iter().zip(target.fields()) {
        if column.data_type() == field.data_type() {
            columns.push(Arc::clone(column));
        } else {
            columns.push(
                cast_with_options(column, field.data_type(), &strict).map_err(|e| {
                    format!(
                        "column \"{}\" arrived as {}, planned as {}: {e}",
                        field.name(),
                        column.data_type(),
                        field.data_type()
                    )
                })?,
            );
        }
    }
    RecordBatch::try_new_with_options(Arc::clone(target), columns, &options)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{conform, mysql_arrow_type, ranges};
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn a_value_the_planned_type_cannot_hold_is_an_error_not_a_null() {
        let planned = Arc::new(Schema::new(vec![Field::new("v", DataType::Int32, true)]));
        let widened =
            RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(vec![1, 2])) as _)])
                .unwrap();
        let conformed = conform(widened, &planned).unwrap();
        assert_eq!(conformed.column(0).data_type(), &DataType::Int32);
        let retyped = RecordBatch::try_from_iter([(
            "v",
            Arc::new(StringArray::from(vec!["10", "x20"])) as _,
        )])
        .unwrap();
        let error = conform(retyped, &planned).unwrap_err();
        assert!(
            error.starts_with("column \"v\" arrived as Utf8, planned as Int32"),
            "{error}"
        );
        let too_big =
            RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(vec![i64::MAX])) as _)])
                .unwrap();
        assert!(conform(too_big, &planned).is_err());
    }

    #[test]
    fn mysql_declared_types_map_as_the_driver_reads_them() {
        assert_eq!(mysql_arrow_type("year(4)"), Some(DataType::Int16));
        assert_eq!(mysql_arrow_type("int(10) unsigned"), Some(DataType::UInt32));
        assert_eq!(
            mysql_arrow_type("decimal(12,3)"),
            Some(DataType::Decimal128(12, 3))
        );
        assert_eq!(mysql_arrow_type("varbinary(8)"), Some(DataType::Binary));
        assert_eq!(mysql_arrow_type("longtext"), Some(DataType::LargeUtf8));
        assert_eq!(mysql_arrow_type("point"), None);
    }

    #[test]
    fn ranges_cover_everything_once() {
        assert_eq!(
            ranges(0, 10, 3),
            vec![(0, Some(3)), (3, Some(6)), (6, None)]
        );
        assert_eq!(ranges(0, 1, 4), vec![]);
        assert_eq!(ranges(0, 2, 4), vec![(0, Some(1)), (1, None)]);
    }
}
