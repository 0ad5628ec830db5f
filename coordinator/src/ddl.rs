//! Execution of Quarry's own statements against the metastore.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::object_store::ObjectStore;
use futures::{StreamExt, TryStreamExt};
use quarry_files::{list_data_files, normalize_location, partition_value, serde_defaults, types};
use quarry_metastore::{
    Column, ColumnStatistics, Database, HiveType, Partition, StorageDescriptor, StorageFormat,
    Table, TableStatistics, TableType, partition_spec,
};

use crate::catalog::VIEW_DEFAULT_DATABASE;
use crate::engine::DEFAULT_DATABASE;
use crate::front::{ColumnDef, CreateTable, ObjectName, PartitionSpec, Statement};
use crate::session::{Output, Session};
use crate::show;
use crate::{CoordinatorError, Result};

/// Runs one of Quarry's statements.
pub(crate) async fn execute(session: &Session, statement: Statement) -> Result<Output> {
    let metastore = session.engine().metastore();
    match statement {
        Statement::CreateDatabase {
            name,
            if_not_exists,
            comment,
            location,
            properties,
        } => {
            let location = match location {
                Some(l) => normalize_location(&l)?,
                None => session.engine().default_database_location(&name)?,
            };
            let db = Database {
                name,
                location,
                description: comment,
                properties,
            };
            metastore.create_database(&db, if_not_exists).await?;
            Ok(Output::Done("CREATE DATABASE".into()))
        }
        Statement::DropDatabase {
            name,
            if_exists,
            cascade,
        } => {
            if name == DEFAULT_DATABASE {
                return Err(CoordinatorError::Invalid(
                    "database \"default\" cannot be dropped".into(),
                ));
            }
            match metastore.drop_database(&name, cascade).await? {
                Some((_, tables)) => {
                    for table in &tables {
                        delete_managed_files(session, table).await;
                    }
                    if session.current_database() == name {
                        session.set_current_database(DEFAULT_DATABASE);
                    }
                }
                None if if_exists => {}
                None => return Err(quarry_metastore::MetastoreError::DatabaseNotFound(name).into()),
            }
            Ok(Output::Done("DROP DATABASE".into()))
        }
        Statement::Use { database } => {
            if metastore.get_database(&database).await?.is_none() {
                return Err(quarry_metastore::MetastoreError::DatabaseNotFound(database).into());
            }
            session.set_current_database(&database);
            Ok(Output::Done("USE".into()))
        }
        Statement::CreateTable(ct) => create_table(session, ct).await,
        Statement::DropTable {
            name,
            if_exists,
            view,
        } => drop_table(session, &name, if_exists, view).await,
        Statement::CreateView {
            name,
            or_replace,
            if_not_exists,
            columns,
            query,
        } => create_view(session, &name, or_replace, if_not_exists, &columns, &query).await,
        Statement::AddPartitions {
            table,
            if_not_exists,
            partitions,
        } => add_partitions(session, &table, if_not_exists, partitions).await,
        Statement::DropPartitions {
            table,
            if_exists,
            partitions,
        } => {
            let table = require_table(session, &table).await?;
            require_partitioned(&table)?;
            let values = partitions
                .iter()
                .map(|spec| ordered_values(&table, spec))
                .collect::<Result<Vec<_>>>()?;
            let dropped = metastore
                .drop_partitions(&table, &values, if_exists)
                .await?;
            if table.table_type == TableType::Managed {
                for partition in &dropped {
                    delete_files(session, &partition.location).await;
                }
            }
            Ok(Output::Done("ALTER TABLE".into()))
        }
        Statement::RepairTable { table } => repair_table(session, &table).await,
        Statement::Transaction(tag) => Ok(Output::Done(tag.to_string())),
        Statement::SetVariable { name, value } => {
            if name == "statement_timeout" {
                crate::session::parse_timeout(&value)?;
            }
            session.set_variable(&name, &value);
            Ok(Output::Done("SET".into()))
        }
        Statement::ShowVariable { name } => match session.variable(&name) {
            Some(value) => Output::text_rows(&[name.as_str()], vec![vec![value]]),
            None => Err(CoordinatorError::Invalid(format!(
                "unrecognized configuration parameter \"{name}\""
            ))),
        },
        Statement::Analyze { table } => analyze_table(session, &table).await,
        Statement::Crawler(statement) => {
            crate::crawler_statements::execute(session, statement).await
        }
        Statement::CreateCatalog {
            name,
            connector,
            if_not_exists,
            options,
        } => {
            crate::connectors::create_catalog(session, name, connector, if_not_exists, options)
                .await
        }
        Statement::DropCatalog { name, if_exists } => {
            crate::connectors::drop_catalog(session, name, if_exists).await
        }
        Statement::ShowCatalogs => crate::connectors::show_catalogs(session).await,
        Statement::CreateUser { .. } | Statement::AlterUser { .. } | Statement::DropUser { .. } => {
            crate::users::execute(session, statement).await
        }
        Statement::ShowDatabases { .. }
        | Statement::ShowTables { .. }
        | Statement::Describe { .. }
        | Statement::ShowCreateTable { .. }
        | Statement::ShowPartitions { .. } => show::execute(session, statement).await,
    }
}

pub(crate) async fn require_table(session: &Session, name: &ObjectName) -> Result<Table> {
    let (database, table) = session.resolve(name)?;
    if session
        .engine()
        .metastore()
        .get_database(&database)
        .await?
        .is_none()
    {
        return Err(quarry_metastore::MetastoreError::DatabaseNotFound(database).into());
    }
    Ok(session
        .engine()
        .metastore()
        .require_table(&database, &table)
        .await?)
}

fn require_partitioned(table: &Table) -> Result<()> {
    if table.is_partitioned() {
        Ok(())
    } else {
        Err(CoordinatorError::Invalid(format!(
            "table {} is not partitioned",
            table.qualified_name()
        )))
    }
}

fn columns_of(defs: &[ColumnDef], what: &str) -> Result<Vec<Column>> {
    let mut seen = std::collections::BTreeSet::new();
    defs.iter()
        .map(|def| {
            if !seen.insert(def.name.clone()) {
                return Err(CoordinatorError::Invalid(format!(
                    "duplicate {what} \"{}\"",
                    def.name
                )));
            }
            let data_type = HiveType::parse(&def.data_type)
                .map_err(|e| CoordinatorError::Invalid(format!("{what} \"{}\": {e}", def.name)))?;
            Ok(Column {
                name: def.name.clone(),
                data_type,
                comment: def.comment.clone(),
            })
        })
        .collect()
}

async fn create_table(session: &Session, ct: CreateTable) -> Result<Output> {
    let name = ct
        .name
        .as_ref()
        .ok_or_else(|| CoordinatorError::Syntax("table name missing".into()))?;
    let (database, table_name) = session.resolve(name)?;
    let Some(db) = session.engine().metastore().get_database(&database).await? else {
        return Err(quarry_metastore::MetastoreError::DatabaseNotFound(database).into());
    };
    let columns = columns_of(&ct.columns, "column")?;
    let partition_keys = columns_of(&ct.partitioned_by, "partition key")?;
    for key in &partition_keys {
        if columns.iter().any(|c| c.name == key.name) {
            return Err(CoordinatorError::Invalid(format!(
                "partition key \"{}\" is also a data column; Hive keeps them apart",
                key.name
            )));
        }
        if !key.data_type.is_primitive() {
            return Err(CoordinatorError::Invalid(format!(
                "partition key \"{}\" must have a primitive type, not {}",
                key.name, key.data_type
            )));
        }
    }
    let serde_lib = ct.serde_properties.get("serialization.lib").cloned();
    let format = match (&ct.stored_as, &serde_lib) {
        (Some(keyword), _) => StorageFormat::parse(keyword).ok_or_else(|| {
            CoordinatorError::Unsupported(format!(
                "STORED AS {keyword}; supported formats are PARQUET, TEXTFILE, JSON and AVRO"
            ))
        })?,
        (None, Some(lib)) if lib.contains("JsonSerDe") => StorageFormat::Json,
        (None, Some(lib)) if lib.contains("Parquet") => StorageFormat::Parquet,
        (None, Some(lib)) if lib.contains("Avro") => StorageFormat::Avro,
        _ => StorageFormat::TextFile,
    };
    let mut serde_properties = serde_defaults(format);
    for (key, value) in &ct.serde_properties {
        // OpenCSVSerde spells its settings differently.
        let key = match key.as_str() {
            "separatorChar" => "field.delim",
            "quoteChar" => "quote.delim",
            "escapeChar" => "escape.delim",
            other => other,
        };
        serde_properties.insert(key.to_string(), value.clone());
    }
    if let Some(delim) = &ct.field_delimiter {
        serde_properties.insert("field.delim".into(), delim.clone());
    }
    if let Some(null) = &ct.null_format {
        serde_properties.insert("serialization.null.format".into(), null.clone());
    }
    if let Some(escape) = &ct.escape {
        serde_properties.insert("escape.delim".into(), escape.clone());
    }
    let location = match (&ct.location, ct.external) {
        (Some(l), _) => normalize_location(l)?,
        (None, true) => {
            return Err(CoordinatorError::Invalid(format!(
                "external table {database}.{table_name} needs a LOCATION"
            )));
        }
        (None, false) => format!("{}{table_name}/", db.location),
    };
    let mut properties = ct.properties.clone();
    if let Some(comment) = &ct.comment {
        properties.insert("comment".into(), comment.clone());
    }
    let table = Table {
        database,
        name: table_name,
        table_type: if ct.external {
            TableType::External
        } else {
            TableType::Managed
        },
        columns,
        partition_keys,
        storage: StorageDescriptor {
            location,
            format,
            serde_properties,
        },
        properties,
        view_sql: None,
        statistics: None,
        created_at: String::new(),
        updated_at: String::new(),
    };
    // Builds the provider once so bad properties fail now, naming the table.
    quarry_files::MetastoreTable::try_new(table.clone(), session.engine().metastore().clone())?;
    quarry_files::file_format_for(&table, &session.context().state())?;
    if table.table_type == TableType::Managed {
        create_local_dir(&table.storage.location)?;
    }
    check_location(session, &table.storage.location).await?;
    session
        .engine()
        .metastore()
        .create_table(&table, ct.if_not_exists, false)
        .await?;
    Ok(Output::Done("CREATE TABLE".into()))
}

/// Creates a local folder for a managed location; other stores need no folders.
fn create_local_dir(location: &str) -> Result<()> {
    if let Some(path) = local_path(location) {
        std::fs::create_dir_all(&path).map_err(|e| {
            CoordinatorError::Invalid(format!("cannot create location \"{location}\": {e}"))
        })?;
    }
    Ok(())
}

fn local_path(location: &str) -> Option<std::path::PathBuf> {
    url_of(location).ok()?.to_file_path().ok()
}

fn url_of(location: &str) -> Result<url::Url> {
    url::Url::parse(location)
        .map_err(|e| CoordinatorError::Invalid(format!("invalid location \"{location}\": {e}")))
}

async fn store_for(
    session: &Session,
    location: &str,
) -> Result<(Arc<dyn ObjectStore>, ListingTableUrl)> {
    let url = ListingTableUrl::parse(location)?;
    let store = session
        .context()
        .runtime_env()
        .object_store(url.object_store())?;
    Ok((store, url))
}

/// A location must exist (local) or be listable (object stores) before a table uses it.
async fn check_location(session: &Session, location: &str) -> Result<()> {
    if let Some(path) = local_path(location) {
        if !path.is_dir() {
            return Err(quarry_files::FilesError::LocationNotFound {
                location: location.into(),
            }
            .into());
        }
        return Ok(());
    }
    let (store, url) = store_for(session, location).await?;
    let mut listing = store.list(Some(url.prefix()));
    listing
        .try_next()
        .await
        .map_err(|e| quarry_files::FilesError::Unreadable {
            location: location.into(),
            reason: e.to_string(),
        })?;
    Ok(())
}

async fn drop_table(
    session: &Session,
    name: &ObjectName,
    if_exists: bool,
    view: bool,
) -> Result<Output> {
    // A temporary table hides a table of the same name, as in PostgreSQL's pg_temp.
    let temp_name = name.catalog.is_none()
        && name
            .database
            .as_deref()
            .is_none_or(|db| db == crate::temp::TEMP_SCHEMA);
    if !view && temp_name && session.drop_temp_table(&name.name)? {
        return Ok(Output::Done("DROP TABLE".into()));
    }
    let (database, table_name) = session.resolve(name)?;
    let metastore = session.engine().metastore();
    let existing = metastore.get_table(&database, &table_name).await?;
    let tag = if view { "DROP VIEW" } else { "DROP TABLE" };
    let Some(existing) = existing else {
        if if_exists {
            return Ok(Output::Done(tag.into()));
        }
        if metastore.get_database(&database).await?.is_none() {
            return Err(quarry_metastore::MetastoreError::DatabaseNotFound(database).into());
        }
        return Err(quarry_metastore::MetastoreError::TableNotFound {
            database,
            table: table_name,
        }
        .into());
    };
    let is_view = existing.table_type == TableType::VirtualView;
    if is_view != view {
        let (what, use_instead) = if is_view {
            ("a view", "DROP VIEW")
        } else {
            ("a table", "DROP TABLE")
        };
        return Err(CoordinatorError::Invalid(format!(
            "{} is {what}; use {use_instead}",
            existing.qualified_name()
        )));
    }
    if let Some(dropped) = metastore.drop_table(&database, &table_name).await? {
        delete_managed_files(session, &dropped).await;
    }
    Ok(Output::Done(tag.into()))
}

/// Deletes the files of a managed table (after its metastore entry is gone). Failures
/// are logged, not raised: the table is already dropped.
async fn delete_managed_files(session: &Session, table: &Table) {
    if table.table_type != TableType::Managed {
        return;
    }
    delete_files(session, &table.storage.location).await;
}

async fn delete_files(session: &Session, location: &str) {
    let result = async {
        let (store, url) = store_for(session, location).await?;
        let paths = store
            .list(Some(url.prefix()))
            .map_ok(|m| m.location)
            .boxed();
        store
            .delete_stream(paths)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| CoordinatorError::Invalid(e.to_string()))?;
        if let Some(path) = local_path(location) {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok::<_, CoordinatorError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(location, error = %e.user_message(), "could not delete managed files");
    }
}

async fn create_view(
    session: &Session,
    name: &ObjectName,
    or_replace: bool,
    if_not_exists: bool,
    columns: &[String],
    query: &str,
) -> Result<Output> {
    let (database, view_name) = session.resolve(name)?;
    let current = session.current_database();
    // Planned now so a bad query fails at CREATE, and to learn the view's columns.
    let plan = session.context().state().create_logical_plan(query).await?;
    let returned = plan.schema().fields().len();
    if !columns.is_empty() && columns.len() != returned {
        return Err(CoordinatorError::Invalid(format!(
            "view {database}.{view_name} names {} columns but its query returns {returned}",
            columns.len(),
        )));
    }
    let sql = if columns.is_empty() {
        query.to_string()
    } else {
        format!(
            "SELECT * FROM ({query}) AS {view_name}({})",
            columns.join(", ")
        )
    };
    let plan = session.context().state().create_logical_plan(&sql).await?;
    let schema = plan.schema();
    let view_columns = schema
        .fields()
        .iter()
        .map(|f| {
            let data_type = types::hive_type(f.data_type()).unwrap_or(HiveType::String);
            Ok(Column::new(f.name().clone(), data_type))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut properties = BTreeMap::new();
    properties.insert(VIEW_DEFAULT_DATABASE.to_string(), current);
    let view = Table {
        database,
        name: view_name,
        table_type: TableType::VirtualView,
        columns: view_columns,
        partition_keys: vec![],
        storage: StorageDescriptor {
            location: String::new(),
            format: StorageFormat::Parquet,
            serde_properties: BTreeMap::new(),
        },
        properties,
        view_sql: Some(sql),
        statistics: None,
        created_at: String::new(),
        updated_at: String::new(),
    };
    let metastore = session.engine().metastore();
    if or_replace
        && let Some(existing) = metastore.get_table(&view.database, &view.name).await?
        && existing.table_type != TableType::VirtualView
    {
        return Err(CoordinatorError::Invalid(format!(
            "{} is a table; CREATE OR REPLACE VIEW replaces only views",
            existing.qualified_name()
        )));
    }
    metastore
        .create_table(&view, if_not_exists, or_replace)
        .await?;
    Ok(Output::Done("CREATE VIEW".into()))
}

/// Partition values in key order, each checked against its key's type.
fn ordered_values(table: &Table, spec: &PartitionSpec) -> Result<Vec<String>> {
    for (key, _) in spec {
        if !table.partition_keys.iter().any(|k| &k.name == key) {
            return Err(CoordinatorError::Invalid(format!(
                "\"{key}\" is not a partition key of {} (keys: {})",
                table.qualified_name(),
                key_names(table)
            )));
        }
    }
    table
        .partition_keys
        .iter()
        .map(|key| {
            let value = spec
                .iter()
                .find(|(k, _)| *k == key.name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    CoordinatorError::Invalid(format!(
                        "partition spec of {} is missing key \"{}\" (keys: {})",
                        table.qualified_name(),
                        key.name,
                        key_names(table)
                    ))
                })?;
            partition_value(key, &value)?;
            Ok(value)
        })
        .collect()
}

fn key_names(table: &Table) -> String {
    table
        .partition_keys
        .iter()
        .map(|k| k.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn add_partitions(
    session: &Session,
    name: &ObjectName,
    if_not_exists: bool,
    specs: Vec<(PartitionSpec, Option<String>)>,
) -> Result<Output> {
    let table = require_table(session, name).await?;
    require_partitioned(&table)?;
    let mut partitions = Vec::with_capacity(specs.len());
    for (spec, location) in &specs {
        let values = ordered_values(&table, spec)?;
        let location = match location {
            Some(l) => normalize_location(l)?,
            None => format!(
                "{}{}/",
                table.storage.location,
                partition_spec(&table.partition_keys, &values)
            ),
        };
        partitions.push(Partition { values, location });
    }
    session
        .engine()
        .metastore()
        .add_partitions(&table, &partitions, if_not_exists)
        .await?;
    Ok(Output::Done("ALTER TABLE".into()))
}

/// `MSCK REPAIR TABLE`: registers `key=value` folders under the table location that the
/// metastore does not know yet. Folders that do not fit the partition keys are reported.
async fn repair_table(session: &Session, name: &ObjectName) -> Result<Output> {
    let table = require_table(session, name).await?;
    require_partitioned(&table)?;
    let (store, url) = store_for(session, &table.storage.location).await?;
    let files = list_data_files(&store, &url).await?;
    let prefix = url.prefix().as_ref().to_string();
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut skipped = std::collections::BTreeSet::new();
    for file in files {
        let relative = file.location.as_ref()[prefix.len()..]
            .trim_start_matches('/')
            .to_string();
        let segments: Vec<&str> = relative.split('/').collect();
        let keys = &table.partition_keys;
        if segments.len() <= keys.len() {
            continue;
        }
        let dir = segments[..keys.len()].join("/");
        let values: Option<Vec<String>> = keys
            .iter()
            .zip(&segments)
            .map(|(key, segment)| {
                let (k, v) = segment.split_once('=')?;
                (unescape_path(k).eq_ignore_ascii_case(&key.name)).then(|| unescape_path(v))
            })
            .collect();
        match values {
            Some(values)
                if keys.iter().zip(&values).all(|(k, v)| {
                    v == "__HIVE_DEFAULT_PARTITION__" || partition_value(k, v).is_ok()
                }) =>
            {
                found.insert(dir, values);
            }
            _ => {
                skipped.insert(dir);
            }
        }
    }
    let partitions: Vec<Partition> = found
        .iter()
        .map(|(dir, values)| Partition {
            values: values.clone(),
            location: format!("{}{dir}/", table.storage.location),
        })
        .collect();
    let added = session
        .engine()
        .metastore()
        .add_partitions(&table, &partitions, true)
        .await?;
    let mut rows = vec![vec![format!(
        "partitions added: {added}, already known: {}",
        partitions.len() - added
    )]];
    for dir in skipped {
        rows.push(vec![format!(
            "skipped folder not matching partition keys ({}): {dir}",
            key_names(&table)
        )]);
    }
    Output::text_rows(show::RESULT_COLUMNS, rows)
}

/// Hive's `%XX` escapes in partition folder names.
fn unescape_path(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `ANALYZE TABLE t COMPUTE STATISTICS`: row count, per-column nulls, distinct estimate,
/// min and max, and file count and bytes, stored in the metastore for the planner.
async fn analyze_table(session: &Session, name: &ObjectName) -> Result<Output> {
    let table = require_table(session, name).await?;
    if table.table_type == TableType::VirtualView {
        return Err(CoordinatorError::Invalid(format!(
            "{} is a view; only tables can be analyzed",
            table.qualified_name()
        )));
    }
    let all_columns: Vec<&Column> = table.columns.iter().chain(&table.partition_keys).collect();
    let mut select = vec!["count(*)".to_string()];
    for column in &all_columns {
        let c = quote_ident(&column.name);
        select.push(format!("count({c})"));
        if column.data_type.is_primitive() && column.data_type != HiveType::Binary {
            select.push(format!("approx_distinct(CAST({c} AS VARCHAR))"));
            select.push(format!("min({c})"));
            select.push(format!("max({c})"));
        }
    }
    let sql = format!(
        "SELECT {} FROM {}.{}.{}",
        select.join(", "),
        crate::catalog::QUARRY_CATALOG,
        quote_ident(&table.database),
        quote_ident(&table.name)
    );
    let batches = session.context().sql(&sql).await?.collect().await?;
    let batch = batches
        .first()
        .ok_or_else(|| CoordinatorError::Invalid("ANALYZE returned nothing".into()))?;
    let value = |i: usize| ScalarValue::try_from_array(batch.column(i), 0);
    let as_u64 = |v: ScalarValue| match v {
        ScalarValue::Int64(Some(n)) => n as u64,
        ScalarValue::UInt64(Some(n)) => n,
        _ => 0,
    };
    let row_count = as_u64(value(0)?);
    let mut columns = BTreeMap::new();
    let mut i = 1;
    for column in &all_columns {
        let non_null = as_u64(value(i)?);
        i += 1;
        let mut stats = ColumnStatistics {
            null_count: row_count - non_null.min(row_count),
            ..Default::default()
        };
        if column.data_type.is_primitive() && column.data_type != HiveType::Binary {
            stats.distinct_count = Some(as_u64(value(i)?));
            let text = |v: ScalarValue| (!v.is_null()).then(|| v.to_string());
            stats.min = text(value(i + 1)?);
            stats.max = text(value(i + 2)?);
            i += 3;
        }
        columns.insert(column.name.clone(), stats);
    }
    let (file_count, total_bytes) = table_files(session, &table).await?;
    let stats = TableStatistics {
        row_count,
        total_bytes,
        file_count,
        columns,
        computed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    session
        .engine()
        .metastore()
        .set_statistics(&table.database, &table.name, &stats)
        .await?;
    Output::text_rows(
        show::RESULT_COLUMNS,
        vec![vec![format!(
            "{}: {row_count} rows, {file_count} files, {total_bytes} bytes, {} columns analyzed",
            table.qualified_name(),
            all_columns.len()
        )]],
    )
}

async fn table_files(session: &Session, table: &Table) -> Result<(u64, u64)> {
    let locations: Vec<String> = if table.is_partitioned() {
        session
            .engine()
            .metastore()
            .list_partitions(&table.database, &table.name)
            .await?
            .into_iter()
            .map(|p| p.location)
            .collect()
    } else {
        vec![table.storage.location.clone()]
    };
    let (mut count, mut bytes) = (0, 0);
    for location in locations {
        let (store, url) = store_for(session, &location).await?;
        for file in list_data_files(&store, &url).await? {
            count += 1;
            bytes += file.size;
        }
    }
    Ok((count, bytes))
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
