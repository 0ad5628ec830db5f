//! `pg_catalog.pg_class` and `pg_attribute` with Quarry's relation OIDs and type modifiers,
//! `pg_roles` with Quarry's users, empty `pg_index` and `pg_policy`, pg_class's
//! `reloptions` and array-typed ACLs: where datafusion-pg-catalog's tables differ from what
//! clients read.
//!
//! The library numbers relations with a per-session counter that Quarry cannot read, so
//! Quarry gives pg_class's `oid` and pg_attribute's `attrelid` its own OIDs, derived from
//! each relation's name (`origins::relation_oid`), the ones RowDescription carries. And the
//! library reports every column's `atttypmod` as -1, so drivers would see `numeric` without
//! its precision and scale (pgjdbc's `getColumns` COLUMN_SIZE, SQLAlchemy's `format_type`,
//! psql's `\d`); Quarry fills it in for decimal columns. For both, Quarry walks the catalogs
//! in the order the library does and pairs each row with the relation or column it
//! describes, checking names (and column numbers), so a row is only changed when it is
//! known to describe that relation or column.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int16Type, Int32Type, Schema, SchemaRef};
use datafusion::catalog::{CatalogProviderList, SchemaProvider, Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::{ExecutionPlan, collect};

use quarry_files::types::declared_character_type;
use quarry_metastore::{HiveType, Metastore, UserRecord};

use crate::origins::relation_oid;

/// pg_catalog tables that have no rows in Quarry (the overlay answers them empty; statement
/// rewrites may rely on it).
pub(crate) const EMPTY_TABLES: &[&str] = &["pg_index", "pg_policy"];

/// The library's pg_catalog schema, with its `pg_attribute`, `pg_class` and `pg_index` amended.
#[derive(Debug)]
pub(crate) struct PgCatalogOverlay {
    inner: Arc<dyn SchemaProvider>,
    catalogs: Weak<dyn CatalogProviderList>,
    metastore: Metastore,
}

impl PgCatalogOverlay {
    pub(crate) fn new(
        inner: Arc<dyn SchemaProvider>,
        catalogs: Weak<dyn CatalogProviderList>,
        metastore: Metastore,
    ) -> Self {
        Self {
            inner,
            catalogs,
            metastore,
        }
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogOverlay {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = self.inner.table(name).await?;
        Ok(match table {
            Some(inner) if name == "pg_attribute" => Some(Arc::new(Amended {
                schema: inner.schema(),
                inner,
                amendment: Amendment::Attributes(self.catalogs.clone()),
            })),
            Some(inner) if EMPTY_TABLES.contains(&name) => Some(Arc::new(MemTable::try_new(
                empty_table_schema(name, &inner.schema()),
                vec![vec![]],
            )?)),
            Some(inner) if name == "pg_class" => Some(Arc::new(Amended {
                schema: with_reloptions(&inner.schema()),
                inner,
                amendment: Amendment::Classes(self.catalogs.clone()),
            })),
            // The library types these ACL columns as text; psql's `\dn+` passes them to
            // `array_to_string`. Quarry grants nothing through ACLs: they are all NULL.
            Some(inner) if name == "pg_namespace" => Some(Arc::new(Amended {
                schema: retyped(&inner.schema(), "nspacl", text_array()),
                inner,
                amendment: Amendment::Nulls,
            })),
            // Quarry's users (the library's pg_roles is empty): psql's `\du`.
            Some(inner) if name == "pg_roles" => Some(Arc::new(Amended {
                schema: inner.schema(),
                inner,
                amendment: Amendment::Roles(self.metastore.clone()),
            })),
            other => other,
        })
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// A table of the library's pg_catalog, read whole and amended before Quarry answers with it.
#[derive(Debug)]
struct Amended {
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
    amendment: Amendment,
}

#[derive(Debug)]
enum Amendment {
    /// pg_attribute: `attrelid` (Quarry's OIDs) and `atttypmod` from the catalogs.
    Attributes(Weak<dyn CatalogProviderList>),
    /// pg_class: `oid` and `relfilenode` (Quarry's OIDs, see `origins.rs`), and
    /// `reloptions` appended as NULLs.
    Classes(Weak<dyn CatalogProviderList>),
    /// Columns whose type Quarry changes, all NULL in the library's rows: NULLs of the new
    /// type.
    Nulls,
    /// pg_roles: one row per user in the metastore.
    Roles(Metastore),
}

/// A relation as the library lists it: its name, Quarry's OID for it and, when asked for,
/// its columns in schema order.
struct Relation {
    name: String,
    oid: u32,
    columns: Vec<ColumnFacts>,
}

/// What Quarry knows of a column that the library does not.
struct ColumnFacts {
    name: String,
    typmod: i32,
    /// A type OID other than the library's (`varchar`, `bpchar`).
    type_oid: Option<u32>,
}

/// Every relation of every catalog in the library's order (catalog, schema and table names
/// as their providers list them). `with_columns`: open each table for its columns.
async fn relations(catalogs: &Weak<dyn CatalogProviderList>, with_columns: bool) -> Vec<Relation> {
    let mut relations = Vec::new();
    let Some(catalogs) = catalogs.upgrade() else {
        return relations;
    };
    for catalog_name in catalogs.catalog_names() {
        let Some(catalog) = catalogs.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in catalog.schema_names() {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            for table_name in schema.table_names() {
                let mut columns = Vec::new();
                if with_columns {
                    // A table that cannot be opened is not listed by the library either.
                    let Ok(Some(table)) = schema.table(&table_name).await else {
                        continue;
                    };
                    columns = table
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| ColumnFacts {
                            name: f.name().clone(),
                            typmod: type_modifier(f),
                            type_oid: declared_type_oid(f),
                        })
                        .collect();
                }
                relations.push(Relation {
                    oid: relation_oid(&catalog_name, &schema_name, &table_name),
                    name: table_name,
                    columns,
                });
            }
        }
    }
    relations
}

/// pg_class's schema with `reloptions` (storage options, `text[]`), which the library leaves
/// out and SQLAlchemy's index reflection selects; no Quarry relation has any.
fn with_reloptions(schema: &SchemaRef) -> SchemaRef {
    if schema.index_of("reloptions").is_ok() {
        return Arc::clone(schema);
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("reloptions", text_array(), true));
    Arc::new(Schema::new(fields))
}

/// PostgreSQL's `text[]` (and `aclitem[]`, which clients read as text).
fn text_array() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// `schema` with column `name` (when there) of type `data_type`.
fn retyped(schema: &SchemaRef, name: &str, data_type: DataType) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match field.name() == name {
            true => field.as_ref().clone().with_data_type(data_type.clone()),
            false => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `batches` as rows of `schema`: columns missing from a batch, or of another type there,
/// become NULLs of `schema`'s type (only for columns that are NULL in every row).
fn with_nulls(batches: Vec<RecordBatch>, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    batches
        .into_iter()
        .map(|batch| {
            let columns = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, field)| match batch.columns().get(i) {
                    Some(column) if column.data_type() == field.data_type() => Arc::clone(column),
                    _ => new_null_array(field.data_type(), batch.num_rows()),
                })
                .collect();
            Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
        })
        .collect()
}

/// pg_roles rows for Quarry's users: administrators are superusers (they manage users),
/// everyone can log in; a role's OID is a fixed hash of its name, like relations'.
fn roles(schema: &SchemaRef, users: &[UserRecord]) -> Result<RecordBatch> {
    let flags = |value: &dyn Fn(&UserRecord) -> bool| -> ArrayRef {
        Arc::new(
            users
                .iter()
                .map(|u| Some(value(u)))
                .collect::<BooleanArray>(),
        )
    };
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let column: ArrayRef = match field.name().as_str() {
                "rolname" => Arc::new(StringArray::from_iter_values(users.iter().map(|u| &u.name))),
                "rolsuper" | "rolcreaterole" | "rolcreatedb" | "rolbypassrls" => {
                    flags(&|u| u.admin)
                }
                "rolinherit" | "rolcanlogin" => flags(&|_| true),
                "rolreplication" => flags(&|_| false),
                "rolconnlimit" => Arc::new(Int32Array::from(vec![-1; users.len()])),
                "rolpassword" => Arc::new(StringArray::from(vec!["********"; users.len()])),
                "oid" => Arc::new(Int64Array::from_iter_values(
                    users
                        .iter()
                        .map(|u| i64::from(relation_oid("", "", &u.name))),
                )),
                _ => new_null_array(field.data_type(), users.len()),
            };
            Ok(cast(&column, field.data_type())?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// The schema of an [`EMPTY_TABLES`] table, with the types clients expect where the
/// library's differ:
/// * pg_index: the library ships PostgreSQL's own system indexes, which describe tables
///   Quarry does not have (Quarry's tables have no indexes); its vector columns are arrays;
/// * pg_policy: no row-level security policies; `polroles` is an OID array (psql's `\d+`
///   asks `oid = ANY (polroles)`), which the library types as text.
fn empty_table_schema(name: &str, schema: &SchemaRef) -> SchemaRef {
    match name {
        "pg_index" => with_vector_columns(schema),
        "pg_policy" => retyped(
            schema,
            "polroles",
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
        ),
        _ => Arc::clone(schema),
    }
}

/// pg_index's schema with its vector columns as arrays, as PostgreSQL's `int2vector` and
/// `oidvector` behave (clients `unnest(indkey)`); the library types them as text.
fn with_vector_columns(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let element = match field.name().as_str() {
                "indkey" | "indoption" => DataType::Int16,
                "indclass" | "indcollation" => DataType::Int32,
                _ => return field.as_ref().clone(),
            };
            Field::new(
                field.name(),
                DataType::List(Arc::new(Field::new("item", element, true))),
                field.is_nullable(),
            )
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// PostgreSQL's `atttypmod` for a column: `numeric(p, s)` packs precision and scale, and
/// `varchar(n)`/`char(n)` hold their length, after the 4-byte varlena header; other types
/// carry none.
pub fn type_modifier(field: &Field) -> i32 {
    if let Some((_, n)) = character_type(field) {
        return i32::try_from(n).map_or(-1, |n| n.saturating_add(4));
    }
    match field.data_type() {
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s)
            if *s >= 0 =>
        {
            ((i32::from(*p) << 16) | i32::from(*s)) + 4
        }
        _ => -1,
    }
}

/// The PostgreSQL type OID of a column whose declared type Arrow does not keep:
/// `varchar(n)` (1043) and `char(n)` (`bpchar`, 1042), read as strings (otherwise `text`).
pub fn declared_type_oid(field: &Field) -> Option<u32> {
    character_type(field).map(|(oid, _)| oid)
}

/// Field metadata key under which the PostgreSQL and MySQL connectors keep a column's type
/// as the source declares it (datafusion-table-providers' `SOURCE_TYPE_METADATA_KEY`).
const SOURCE_TYPE_KEY: &str = "source_type";

/// A string column's declared `varchar(n)` or `char(n)` as type OID and length: from the
/// metastore for file tables, or as the source declares it for a PostgreSQL
/// (`character varying(n)`, `character(n)`) or MySQL (`varchar(n)`, `char(n)`) column.
fn character_type(field: &Field) -> Option<(u32, u32)> {
    match declared_character_type(field) {
        Some(HiveType::Varchar(n)) => return Some((1043, n)),
        Some(HiveType::Char(n)) => return Some((1042, n)),
        _ => {}
    }
    if !matches!(
        field.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        return None;
    }
    let source = field.metadata().get(SOURCE_TYPE_KEY)?.to_ascii_lowercase();
    let (name, rest) = source.split_once('(')?;
    let n = rest.strip_suffix(')')?.trim().parse().ok()?;
    match name.trim() {
        "character varying" | "varchar" => Some((1043, n)),
        "character" | "char" | "bpchar" => Some((1042, n)),
        _ => None,
    }
}

/// pg_attribute's `batches` with `attrelid`, `atttypmod` and (for `varchar`/`char`)
/// `atttypid` from `relations`, for the rows that match their columns in order (name and
/// number); from the first row that does not (a table changed between the two walks), the
/// library's values are left.
fn with_attributes(batches: Vec<RecordBatch>, relations: &[Relation]) -> Result<Vec<RecordBatch>> {
    let mut expected = relations.iter().flat_map(|relation| {
        relation
            .columns
            .iter()
            .enumerate()
            .map(move |(i, column)| (relation.oid, i + 1, column))
    });
    let mut in_step = true;
    batches
        .into_iter()
        .map(|batch| {
            let schema = batch.schema();
            let (Ok(relid_at), Ok(name_at), Ok(type_at), Ok(num_at), Ok(typmod_at)) = (
                schema.index_of("attrelid"),
                schema.index_of("attname"),
                schema.index_of("atttypid"),
                schema.index_of("attnum"),
                schema.index_of("atttypmod"),
            ) else {
                return Ok(batch);
            };
            let names = batch.column(name_at).as_string::<i32>();
            let numbers = batch.column(num_at).as_primitive::<Int16Type>();
            let old_relids = batch.column(relid_at).as_primitive::<Int32Type>();
            let old_types = batch.column(type_at).as_primitive::<Int32Type>();
            let old_typmods = batch.column(typmod_at).as_primitive::<Int32Type>();
            let old =
                |array: &Int32Array, row: usize| array.is_valid(row).then(|| array.value(row));
            let mut relids = Vec::with_capacity(batch.num_rows());
            let mut types = Vec::with_capacity(batch.num_rows());
            let mut typmods = Vec::with_capacity(batch.num_rows());
            for row in 0..batch.num_rows() {
                let matched =
                    in_step
                        .then(|| expected.next())
                        .flatten()
                        .filter(|(_, number, column)| {
                            !names.is_null(row)
                                && names.value(row) == column.name
                                && usize::try_from(numbers.value(row)) == Ok(*number)
                        });
                in_step = matched.is_some();
                match matched {
                    Some((oid, _, column)) => {
                        relids.push(Some(oid as i32));
                        types.push(column.type_oid.map(|t| t as i32).or(old(old_types, row)));
                        typmods.push(Some(column.typmod));
                    }
                    None => {
                        relids.push(old(old_relids, row));
                        types.push(old(old_types, row));
                        typmods.push(old(old_typmods, row));
                    }
                }
            }
            let mut arrays = batch.columns().to_vec();
            arrays[relid_at] = Arc::new(Int32Array::from(relids));
            arrays[type_at] = Arc::new(Int32Array::from(types));
            arrays[typmod_at] = Arc::new(Int32Array::from(typmods));
            Ok(RecordBatch::try_new(schema, arrays)?)
        })
        .collect()
}

/// pg_class's `batches` with `oid` and `relfilenode` from `relations`, for the rows that
/// match them in order by name (the library lists every table whose schema it can read;
/// from the first row that does not match, the library's values are left).
fn with_class_oids(batches: Vec<RecordBatch>, relations: &[Relation]) -> Result<Vec<RecordBatch>> {
    let mut expected = relations.iter();
    let mut in_step = true;
    batches
        .into_iter()
        .map(|batch| {
            let schema = batch.schema();
            let (Ok(oid_at), Ok(name_at)) = (schema.index_of("oid"), schema.index_of("relname"))
            else {
                return Ok(batch);
            };
            let names = batch.column(name_at).as_string::<i32>();
            let old = batch.column(oid_at).as_primitive::<Int32Type>();
            let oids: Int32Array = (0..batch.num_rows())
                .map(|row| {
                    let matched = in_step
                        .then(|| expected.next())
                        .flatten()
                        .filter(|relation| {
                            !names.is_null(row) && names.value(row) == relation.name
                        });
                    in_step = matched.is_some();
                    match matched {
                        Some(relation) => Some(relation.oid as i32),
                        None => old.is_valid(row).then(|| old.value(row)),
                    }
                })
                .collect();
            let oids: ArrayRef = Arc::new(oids);
            let mut arrays = batch.columns().to_vec();
            arrays[oid_at] = Arc::clone(&oids);
            if let Ok(filenode_at) = schema.index_of("relfilenode") {
                arrays[filenode_at] = oids;
            }
            Ok(RecordBatch::try_new(schema, arrays)?)
        })
        .collect()
}

#[async_trait]
impl TableProvider for Amended {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, None, &[], None).await?;
        let batches = collect(plan, state.task_ctx()).await?;
        let batches = match &self.amendment {
            Amendment::Attributes(catalogs) => {
                with_attributes(batches, &relations(catalogs, true).await)?
            }
            Amendment::Classes(catalogs) => {
                let batches = with_class_oids(batches, &relations(catalogs, false).await)?;
                with_nulls(batches, &self.schema)?
            }
            Amendment::Nulls => with_nulls(batches, &self.schema)?,
            Amendment::Roles(metastore) => {
                let users = metastore
                    .list_users()
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                vec![roles(&self.schema, &users)?]
            }
        };
        Ok(MemorySourceConfig::try_new_exec(
            &[batches],
            self.schema(),
            projection.cloned(),
        )?)
    }
}
