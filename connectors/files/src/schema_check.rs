//! Athena's rules for reading a file whose schema differs from its table's: columns are
//! matched by name, a column the file lacks reads as NULL, and a column stored with a type
//! that cannot be read as the table's type is an error naming the column and both types
//! (DataFusion alone would cast anything castable, strings to numbers included).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::plan_err;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};
use datafusion::physical_plan::ExecutionPlan;

/// Checks each file's schema against the table's, then adapts expressions as DataFusion does.
#[derive(Debug)]
pub(crate) struct ByNameAdapterFactory {
    pub(crate) table: String,
}

impl ByNameAdapterFactory {
    pub(crate) fn for_table(table: &str) -> Arc<dyn PhysicalExprAdapterFactory> {
        Arc::new(Self {
            table: table.to_string(),
        })
    }
}

/// Puts Athena's rules back on the file scans under `plan`, a scan of `table` rebuilt from
/// protobuf on a worker: DataFusion's plan serialization does not carry the adapter.
pub fn restore_schema_rules(
    table: &str,
    plan: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_down(|node| {
        let Some(config) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
        else {
            return Ok(Transformed::no(node));
        };
        let mut config = config.clone();
        config.expr_adapter_factory = Some(ByNameAdapterFactory::for_table(table));
        Ok(Transformed::yes(
            DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>
        ))
    })
    .data()
}

impl PhysicalExprAdapterFactory for ByNameAdapterFactory {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> Result<Arc<dyn PhysicalExprAdapter>> {
        for field in logical_file_schema.fields() {
            let Ok(stored) = physical_file_schema.field_with_name(field.name()) else {
                continue;
            };
            if !readable_as(stored.data_type(), field.data_type()) {
                return plan_err!(
                    "table {}: column \"{}\" is stored as {} in a data file, which cannot be read as {}",
                    self.table,
                    field.name(),
                    stored.data_type(),
                    field.data_type()
                );
            }
        }
        DefaultPhysicalExprAdapterFactory.create(logical_file_schema, physical_file_schema)
    }
}

fn integer_rank(t: &DataType) -> Option<u8> {
    Some(match t {
        DataType::Int8 => 1,
        DataType::UInt8 | DataType::Int16 => 2,
        DataType::UInt16 | DataType::Int32 => 3,
        DataType::UInt32 | DataType::Int64 => 4,
        _ => return None,
    })
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

/// Whether values stored as `stored` can be read as `declared` without loss of meaning
/// (Athena's rules for a file whose column type differs from its table's).
pub fn readable_as(stored: &DataType, declared: &DataType) -> bool {
    use DataType::*;
    if stored == declared || matches!(stored, Null) {
        return true;
    }
    match (stored, declared) {
        (Dictionary(_, value), _) => readable_as(value, declared),
        (s, d) if is_string(s) && is_string(d) => true,
        (s, d) if is_binary(s) && (is_binary(d) || is_string(d)) => true,
        (s, d) if integer_rank(s).is_some() && integer_rank(d).is_some() => {
            integer_rank(s) <= integer_rank(d)
        }
        (s, Float32 | Float64) if integer_rank(s).is_some() => true,
        (Float16 | Float32, Float32 | Float64) | (Float64, Float64) => true,
        (Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s), Decimal128(dp, ds)) => {
            ds >= s && (*dp as i16 - *ds as i16) >= (*p as i16 - *s as i16)
        }
        (s, Decimal128(dp, ds)) if integer_rank(s).is_some() => {
            let digits = match integer_rank(s) {
                Some(1) => 3,
                Some(2) => 5,
                Some(3) => 10,
                _ => 19,
            };
            (*dp as i16 - *ds as i16) >= digits
        }
        (Date32 | Date64, Date32 | Date64) => true,
        (Timestamp(..), Timestamp(..)) => true,
        (List(s) | LargeList(s) | ListView(s), List(d) | LargeList(d)) => {
            readable_as(s.data_type(), d.data_type())
        }
        // Nested fields are matched by name as well; missing ones read as NULL.
        (Struct(s), Struct(d)) => d.iter().all(|df| {
            s.iter()
                .find(|sf| sf.name() == df.name())
                .is_none_or(|sf| readable_as(sf.data_type(), df.data_type()))
        }),
        (Map(s, _), Map(d, _)) => readable_as(s.data_type(), d.data_type()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_is_allowed_and_narrowing_or_reinterpreting_is_not() {
        assert!(readable_as(&DataType::Int32, &DataType::Int64));
        assert!(readable_as(&DataType::Utf8, &DataType::Utf8View));
        assert!(readable_as(
            &DataType::Decimal128(10, 2),
            &DataType::Decimal128(12, 2)
        ));
        assert!(!readable_as(&DataType::Int64, &DataType::Int32));
        assert!(!readable_as(&DataType::Utf8, &DataType::Int32));
        assert!(!readable_as(
            &DataType::Decimal128(12, 4),
            &DataType::Decimal128(12, 2)
        ));
        assert!(!readable_as(&DataType::Float64, &DataType::Int64));
    }
}
