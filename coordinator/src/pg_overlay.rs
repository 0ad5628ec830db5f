//! `pg_catalog.pg_attribute` with type modifiers, an empty `pg_index` and pg_class's
//! `reloptions`: where datafusion-pg-catalog's tables differ from what clients read.
//!
//! datafusion-pg-catalog reports every column's `atttypmod` as -1, so drivers see `numeric`
//! without its precision and scale (pgjdbc's `getColumns` COLUMN_SIZE, SQLAlchemy's
//! `format_type`, psql's `\d`). Quarry wraps the library's pg_catalog schema and fills in
//! `atttypmod` for decimal columns: it walks the catalogs in the order the library does and
//! pairs each row with the column it describes, checking the column's name and number, so a
//! row is only changed when it is known to describe that column.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, Int32Array, RecordBatch, new_null_array};
use datafusion::arrow::datatypes::{DataType, Field, Int16Type, Int32Type, Schema, SchemaRef};
use datafusion::catalog::{CatalogProviderList, SchemaProvider, Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::{ExecutionPlan, collect};

/// The library's pg_catalog schema, with its `pg_attribute`, `pg_class` and `pg_index` amended.
#[derive(Debug)]
pub(crate) struct PgCatalogOverlay {
    inner: Arc<dyn SchemaProvider>,
    catalogs: Weak<dyn CatalogProviderList>,
}

impl PgCatalogOverlay {
    pub(crate) fn new(
        inner: Arc<dyn SchemaProvider>,
        catalogs: Weak<dyn CatalogProviderList>,
    ) -> Self {
        Self { inner, catalogs }
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
                amendment: Amendment::TypeModifiers(self.catalogs.clone()),
            })),
            // The library ships PostgreSQL's own system indexes, which describe tables Quarry
            // does not have; Quarry's tables have no indexes.
            Some(inner) if name == "pg_index" => Some(Arc::new(MemTable::try_new(
                with_vector_columns(&inner.schema()),
                vec![vec![]],
            )?)),
            Some(inner) if name == "pg_class" && inner.schema().index_of("reloptions").is_err() => {
                Some(Arc::new(Amended {
                    schema: with_reloptions(&inner.schema()),
                    inner,
                    amendment: Amendment::NullLastColumn,
                }))
            }
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
    /// pg_attribute: `atttypmod` from the catalogs' column types.
    TypeModifiers(Weak<dyn CatalogProviderList>),
    /// A column the library lacks, appended as NULLs (pg_class's `reloptions`).
    NullLastColumn,
}

/// One column as the library enumerates them: name, 1-based number, PostgreSQL typmod.
type Column = (String, i16, i32);

/// Every column of every table, in the library's order (catalog, schema, table names as
/// their providers list them; columns in schema order).
async fn columns(catalogs: &Weak<dyn CatalogProviderList>) -> Result<Vec<Column>> {
    let mut columns = Vec::new();
    let Some(catalogs) = catalogs.upgrade() else {
        return Ok(columns);
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
                // A table that cannot be opened is skipped by the library too.
                let Ok(Some(table)) = schema.table(&table_name).await else {
                    continue;
                };
                for (i, field) in table.schema().fields().iter().enumerate() {
                    columns.push((
                        field.name().clone(),
                        i16::try_from(i + 1).unwrap_or(i16::MAX),
                        type_modifier(field.data_type()),
                    ));
                }
            }
        }
    }
    Ok(columns)
}

/// pg_class's schema with `reloptions` (storage options, `text[]`), which the library leaves
/// out and SQLAlchemy's index reflection selects; no Quarry relation has any.
fn with_reloptions(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(
        "reloptions",
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    ));
    Arc::new(Schema::new(fields))
}

/// `batches` with one more column, all NULL, of `schema`'s last field.
fn with_null_last_column(
    batches: Vec<RecordBatch>,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    batches
        .into_iter()
        .map(|batch| {
            let mut columns = batch.columns().to_vec();
            columns.push(new_null_array(
                schema.field(columns.len()).data_type(),
                batch.num_rows(),
            ));
            Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
        })
        .collect()
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

/// PostgreSQL's `atttypmod` for an Arrow type: `numeric(p, s)` packs precision and scale
/// after the 4-byte varlena header; other types carry none.
pub fn type_modifier(t: &DataType) -> i32 {
    match t {
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

/// `batches` with `atttypmod` taken from `columns` for the rows that match them in order.
fn with_type_modifiers(batches: Vec<RecordBatch>, columns: &[Column]) -> Result<Vec<RecordBatch>> {
    let mut expected = columns.iter();
    let mut in_step = true;
    batches
        .into_iter()
        .map(|batch| {
            let schema = batch.schema();
            let (Ok(name_at), Ok(num_at), Ok(typmod_at)) = (
                schema.index_of("attname"),
                schema.index_of("attnum"),
                schema.index_of("atttypmod"),
            ) else {
                return Ok(batch);
            };
            let names = batch.column(name_at).as_string::<i32>();
            let numbers = batch.column(num_at).as_primitive::<Int16Type>();
            let current = batch.column(typmod_at).as_primitive::<Int32Type>();
            let typmods: Int32Array = (0..batch.num_rows())
                .map(|row| {
                    let old = current.value(row);
                    if !in_step {
                        return Some(old);
                    }
                    match expected.next() {
                        Some((name, number, typmod))
                            if !names.is_null(row)
                                && names.value(row) == name
                                && numbers.value(row) == *number =>
                        {
                            Some(*typmod)
                        }
                        _ => {
                            in_step = false;
                            Some(old)
                        }
                    }
                })
                .collect();
            let mut arrays = batch.columns().to_vec();
            arrays[typmod_at] = Arc::new(typmods);
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
            Amendment::TypeModifiers(catalogs) => {
                with_type_modifiers(batches, &columns(catalogs).await?)?
            }
            Amendment::NullLastColumn => with_null_last_column(batches, &self.schema)?,
        };
        Ok(MemorySourceConfig::try_new_exec(
            &[batches],
            self.schema(),
            projection.cloned(),
        )?)
    }
}
