//! [`MetastoreTable`]: the `TableProvider` of file-backed metastore tables.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue, Statistics, plan_err};
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchemaBuilder;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType, TryCast, lit};
use datafusion::object_store::{ObjectMeta, ObjectStore};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::ProjectionExec;
use futures::{StreamExt, TryStreamExt};
use quarry_metastore::{Metastore, Partition, StorageFormat, Table, TableStatistics};

use crate::format::header_lines;
use crate::scan::MetastoreScanExec;
use crate::schema_check::ByNameAdapterFactory;
use crate::types::{arrow_type, file_schema, table_schema};
use crate::{FilesError, file_format_for};

/// Hive's name for the partition holding NULL partition values.
const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// How many partition locations are listed at once.
const LISTING_CONCURRENCY: usize = 16;

/// A file-backed metastore table (external or managed).
///
/// # Scans
/// Partitions come from the metastore, never from the directory layout, so a partition may
/// live at any location. Filters on partition keys alone prune partitions exactly; other
/// filters are handed to the file source (Parquet row-group, page-index and row filters)
/// and re-checked by DataFusion.
pub struct MetastoreTable {
    table: Table,
    metastore: Metastore,
    schema: SchemaRef,
    file_schema: SchemaRef,
}

impl fmt::Debug for MetastoreTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetastoreTable")
            .field("table", &self.table.qualified_name())
            .finish()
    }
}

/// The partitions a scan reads, with their typed partition values.
struct SelectedPartitions {
    partitions: Vec<(Partition, Vec<ScalarValue>)>,
    total: usize,
}

impl MetastoreTable {
    /// Wraps a metastore table. The table's properties are checked here, so a bad table
    /// definition is reported when the table is used, naming the table.
    pub fn try_new(table: Table, metastore: Metastore) -> Result<Self, FilesError> {
        header_lines(&table)?;
        Ok(Self {
            schema: table_schema(&table),
            file_schema: file_schema(&table),
            table,
            metastore,
        })
    }

    /// The metastore definition.
    pub fn table(&self) -> &Table {
        &self.table
    }

    fn partition_fields(&self) -> Vec<Arc<Field>> {
        self.table
            .partition_keys
            .iter()
            .map(|k| Arc::new(Field::new(&k.name, arrow_type(&k.data_type), true)))
            .collect()
    }

    fn partition_key_names(&self) -> Vec<&str> {
        self.table
            .partition_keys
            .iter()
            .map(|k| k.name.as_str())
            .collect()
    }

    /// Typed values of one partition, in key order.
    fn typed_values(&self, partition: &Partition) -> Result<Vec<ScalarValue>, FilesError> {
        self.table
            .partition_keys
            .iter()
            .zip(&partition.values)
            .map(|(key, value)| {
                let data_type = arrow_type(&key.data_type);
                if value == HIVE_DEFAULT_PARTITION {
                    return ScalarValue::try_from(&data_type).map_err(|_| bad_value(key, value));
                }
                ScalarValue::try_from_string(value.clone(), &data_type)
                    .map_err(|_| bad_value(key, value))
            })
            .collect()
    }

    async fn select_partitions(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> Result<SelectedPartitions> {
        if !self.table.is_partitioned() {
            let whole = Partition {
                values: vec![],
                location: self.table.storage.location.clone(),
            };
            return Ok(SelectedPartitions {
                partitions: vec![(whole, vec![])],
                total: 1,
            });
        }
        let partitions = self
            .metastore
            .list_partitions(&self.table.database, &self.table.name)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let total = partitions.len();
        let mut typed = Vec::with_capacity(total);
        for partition in partitions {
            let values = self.typed_values(&partition)?;
            typed.push((partition, values));
        }
        let keys = self.partition_key_names();
        let partition_filters: Vec<&Expr> = filters
            .iter()
            .filter(|f| expr_applicable_for_cols(&keys, f))
            .collect();
        if partition_filters.is_empty() || typed.is_empty() {
            return Ok(SelectedPartitions {
                partitions: typed,
                total,
            });
        }

        // Evaluate the filters over a batch with one row per partition.
        let schema = Arc::new(Schema::new(self.partition_fields()));
        let columns = (0..keys.len())
            .map(|i| ScalarValue::iter_to_array(typed.iter().map(|(_, v)| v[i].clone())))
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        let df_schema = DFSchema::try_from(Arc::clone(&schema))?;
        let mut keep = vec![true; typed.len()];
        for filter in partition_filters {
            let filter = unqualified(filter.clone())?;
            let predicate = state.create_physical_expr(filter, &df_schema)?;
            let result = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
            let Some(mask) = result.as_boolean_opt() else {
                return plan_err!("partition filter did not evaluate to a boolean");
            };
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= mask.is_valid(i) && mask.value(i);
            }
        }
        let partitions = typed
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(p, _)| p)
            .collect();
        Ok(SelectedPartitions { partitions, total })
    }

    fn statistics_for(&self, selected: &SelectedPartitions) -> Statistics {
        let Some(stats) = &self.table.statistics else {
            return Statistics::new_unknown(&self.schema);
        };
        let whole = selected.partitions.len() == selected.total;
        metastore_statistics(stats, &self.schema, whole)
    }
}

/// All data columns as strings: how Hive's LazySimpleSerDe sees a text file.
fn text_file_schema(file_schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        file_schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

impl MetastoreTable {
    /// Converts the string columns of a text scan to the table's types as Hive does: the
    /// NULL marker (`\N` by default) is NULL, and a value that does not parse as the
    /// column's type is NULL too.
    fn convert_text(
        &self,
        state: &dyn Session,
        scan: Arc<dyn ExecutionPlan>,
        projection: Option<&Vec<usize>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let null_marker = self
            .table
            .storage
            .serde_properties
            .get("serialization.null.format")
            .cloned()
            .unwrap_or_else(|| "\\N".to_string());
        let scan_schema = scan.schema();
        let df_schema = DFSchema::try_from(Arc::clone(&scan_schema))?;
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let data_columns = self.table.columns.len();
        let mut exprs = Vec::with_capacity(indices.len());
        for (position, &index) in indices.iter().enumerate() {
            let target = self.schema.field(index);
            let column = Expr::Column(Column::new_unqualified(scan_schema.field(position).name()));
            let expr = if index < data_columns {
                let nulled =
                    datafusion::functions::core::expr_fn::nullif(column, lit(null_marker.clone()));
                Expr::TryCast(TryCast::new(Box::new(nulled), target.data_type().clone()))
            } else {
                column
            };
            exprs.push((
                state.create_physical_expr(expr, &df_schema)?,
                target.name().clone(),
            ));
        }
        Ok(Arc::new(ProjectionExec::try_new(exprs, scan)?))
    }
}

fn bad_value(key: &quarry_metastore::Column, value: &str) -> FilesError {
    FilesError::BadPartitionValue {
        key: key.name.clone(),
        value: value.to_string(),
        hive_type: key.data_type.to_string(),
    }
}

/// Strips table qualifiers so a filter evaluates against the bare partition schema.
fn unqualified(expr: Expr) -> Result<Expr> {
    expr.transform(|e| {
        Ok(match e {
            Expr::Column(c) if c.relation.is_some() => {
                Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))
            }
            other => Transformed::no(other),
        })
    })
    .map(|t| t.data)
}

/// Statistics kept by ANALYZE, in DataFusion's form. When partitions were pruned, counts
/// are only upper bounds.
fn metastore_statistics(stats: &TableStatistics, schema: &SchemaRef, whole: bool) -> Statistics {
    let exact_or_bound = |n: usize| {
        if whole {
            Precision::Exact(n)
        } else {
            Precision::Inexact(n)
        }
    };
    let mut out = Statistics::new_unknown(schema);
    out.num_rows = exact_or_bound(stats.row_count as usize);
    out.total_byte_size = Precision::Inexact(stats.total_bytes as usize);
    for (field, col_stats) in schema.fields().iter().zip(out.column_statistics.iter_mut()) {
        let Some(s) = stats.columns.get(field.name()) else {
            continue;
        };
        let parse = |v: &Option<String>| {
            v.as_ref()
                .and_then(|v| ScalarValue::try_from_string(v.clone(), field.data_type()).ok())
                .map(Precision::Inexact)
                .unwrap_or(Precision::Absent)
        };
        col_stats.null_count = exact_or_bound(s.null_count as usize);
        col_stats.distinct_count = s
            .distinct_count
            .map(|d| Precision::Inexact(d as usize))
            .unwrap_or(Precision::Absent);
        // Min and max stay valid bounds under pruning.
        col_stats.min_value = parse(&s.min);
        col_stats.max_value = parse(&s.max);
    }
    out
}

/// Row counts, sizes and column bounds from the Parquet footers of `files`, summed, for a
/// table ANALYZE has not described: DataFusion's listing table collects the same when it
/// plans, and join selection needs them to put the small side first (TPC-H SF 1 took 25 %
/// longer without them, benches/RESULTS.md). Footers are read once per file and then come
/// from DataFusion's file metadata cache.
async fn footer_statistics(
    state: &dyn Session,
    format: &Arc<dyn FileFormat>,
    store_url: &ObjectStoreUrl,
    store: &Arc<dyn ObjectStore>,
    file_schema: &SchemaRef,
    files: &[PartitionedFile],
) -> Result<Statistics> {
    let mut per_file = Vec::with_capacity(files.len());
    for chunk in files.chunks(LISTING_CONCURRENCY) {
        let footers = chunk.iter().map(|file| async move {
            format
                .infer_stats(state, store, Arc::clone(file_schema), &file.object_meta)
                .await
                .map_err(|e| {
                    // A corrupt file is named, as when it is read.
                    DataFusionError::External(Box::new(FilesError::Unreadable {
                        location: format!("{}{}", store_url.as_str(), file.object_meta.location),
                        reason: e.to_string(),
                    }))
                })
        });
        per_file.extend(futures::future::try_join_all(footers).await?);
    }
    Statistics::try_merge_iter(&per_file, file_schema)
}

/// `stats` of a table's data columns, extended to the table's schema (partition keys after
/// them, unknown).
fn with_unknown_columns(mut stats: Statistics, schema: &SchemaRef) -> Statistics {
    let known = stats.column_statistics.len();
    let unknown = Statistics::new_unknown(schema).column_statistics;
    stats
        .column_statistics
        .extend(unknown.into_iter().skip(known));
    stats
}

/// Lists the data files under a location: recursively, skipping hidden files and folders
/// (names starting with `_` or `.`, such as `_SUCCESS`) and empty files, as Hive does.
pub async fn list_data_files(
    store: &Arc<dyn ObjectStore>,
    location: &ListingTableUrl,
) -> Result<Vec<ObjectMeta>> {
    let prefix = location.prefix();
    let prefix_str = prefix.as_ref().to_string();
    let files: Vec<ObjectMeta> = store
        .list(Some(prefix))
        .try_filter(|meta| {
            let relative = meta.location.as_ref()[prefix_str.len()..].trim_start_matches('/');
            let hidden = relative
                .split('/')
                .any(|seg| seg.starts_with('_') || seg.starts_with('.'));
            futures::future::ready(!hidden && meta.size > 0)
        })
        .try_collect()
        .await
        .map_err(|e| {
            DataFusionError::External(Box::new(FilesError::Unreadable {
                location: location.as_str().to_string(),
                reason: e.to_string(),
            }))
        })?;
    Ok(files)
}

#[async_trait]
impl TableProvider for MetastoreTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let keys = self.partition_key_names();
        Ok(filters
            .iter()
            .map(|f| {
                if !keys.is_empty() && expr_applicable_for_cols(&keys, f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let selected = self.select_partitions(state, filters).await?;
        let projected_schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let empty = |schema| -> Arc<dyn ExecutionPlan> {
            let partitions = self.table.is_partitioned().then_some((0, selected.total));
            Arc::new(MetastoreScanExec::new(
                self.table.qualified_name(),
                partitions,
                Arc::new(EmptyExec::new(schema)),
            ))
        };
        let Some((first, _)) = selected.partitions.first() else {
            return Ok(empty(projected_schema));
        };
        let store_url = ListingTableUrl::parse(&first.location)?.object_store();
        let store = state.runtime_env().object_store(&store_url)?;

        let table_name = self.table.qualified_name();
        let tasks: Vec<_> = selected
            .partitions
            .iter()
            .map(|(partition, values)| {
                let (store, store_url) = (Arc::clone(&store), store_url.clone());
                let (partition, values) = (partition.clone(), values.clone());
                let table_name = table_name.clone();
                async move {
                    let url = ListingTableUrl::parse(&partition.location)?;
                    if url.object_store() != store_url {
                        return plan_err!(
                            "table {}: partition location {} is in another object store than {}; \
                         all partitions of a table must share one",
                            table_name,
                            partition.location,
                            store_url.as_str()
                        );
                    }
                    let files = list_data_files(&store, &url).await?;
                    Ok(files
                        .into_iter()
                        .map(|meta| {
                            PartitionedFile::new_from_meta(meta)
                                .with_partition_values(values.clone())
                        })
                        .collect::<Vec<_>>())
                }
            })
            .collect();
        let listings = futures::stream::iter(tasks)
            .buffer_unordered(LISTING_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        let mut files: Vec<PartitionedFile> = listings.into_iter().flatten().collect();
        if files.is_empty() {
            return Ok(empty(projected_schema));
        }
        files.sort_by(|a, b| a.object_meta.location.cmp(&b.object_meta.location));

        let format = file_format_for(&self.table, state)?;
        let text = self.table.storage.format == StorageFormat::TextFile;
        // Text files are read as strings and converted by Hive's rules afterwards.
        let file_schema = if text {
            text_file_schema(&self.file_schema)
        } else {
            Arc::clone(&self.file_schema)
        };
        let table_schema = TableSchemaBuilder::new(Arc::clone(&file_schema))
            .with_table_partition_cols(self.partition_fields())
            .build();
        let statistics = if text {
            Statistics::new_unknown(table_schema.table_schema())
        } else if self.table.statistics.is_none()
            && self.table.storage.format == StorageFormat::Parquet
        {
            let footers =
                footer_statistics(state, &format, &store_url, &store, &file_schema, &files).await?;
            with_unknown_columns(footers, table_schema.table_schema())
        } else {
            self.statistics_for(&selected)
        };
        let groups = FileGroup::new(files).split_files(state.config().target_partitions());
        let config = FileScanConfigBuilder::new(store_url, format.file_source(table_schema))
            .with_file_groups(groups)
            .with_statistics(statistics)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .with_expr_adapter(Some(ByNameAdapterFactory::for_table(
                &self.table.qualified_name(),
            )))
            .build();
        let mut scan = format.create_physical_plan(state, config).await?;
        if text {
            scan = self.convert_text(state, scan, projection)?;
        }
        let partitions = self
            .table
            .is_partitioned()
            .then(|| (selected.partitions.len(), selected.total));
        Ok(Arc::new(MetastoreScanExec::new(
            self.table.qualified_name(),
            partitions,
            scan,
        )))
    }

    fn statistics(&self) -> Option<Statistics> {
        let stats = self.table.statistics.as_ref()?;
        Some(metastore_statistics(stats, &self.schema, true))
    }
}

/// The Arrow type of a partition key, for callers that type partition values.
pub fn partition_value(
    key: &quarry_metastore::Column,
    value: &str,
) -> Result<ScalarValue, FilesError> {
    let data_type: DataType = arrow_type(&key.data_type);
    ScalarValue::try_from_string(value.to_string(), &data_type).map_err(|_| bad_value(key, value))
}
