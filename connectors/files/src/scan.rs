//! [`MetastoreScanExec`]: marks the file scan of a metastore table so EXPLAIN shows how many
//! of the table's partitions it reads (`partitions=N/M`), and so a worker that decodes the
//! scan knows which table's rules apply to its files. Everything else is its child's: it
//! forwards ordering, partitioning, statistics, limits and filter pushdown unchanged.

use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, Statistics,
};

/// The scan of one metastore table: `input` reads its files, of `partitions`
/// (read, of the table's) when the table is partitioned.
#[derive(Debug)]
pub struct MetastoreScanExec {
    table: String,
    partitions: Option<(usize, usize)>,
    input: Arc<dyn ExecutionPlan>,
}

impl MetastoreScanExec {
    pub fn new(
        table: String,
        partitions: Option<(usize, usize)>,
        input: Arc<dyn ExecutionPlan>,
    ) -> Self {
        Self {
            table,
            partitions,
            input,
        }
    }

    /// Qualified table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// `(partitions read, partitions of the table)`; `None` when it has no partitions.
    pub fn partitions(&self) -> Option<(usize, usize)> {
        self.partitions
    }
}

impl DisplayAs for MetastoreScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "MetastoreScanExec: table={}", self.table)?;
                match self.partitions {
                    Some((read, total)) => write!(f, ", partitions={read}/{total}"),
                    None => Ok(()),
                }
            }
            DisplayFormatType::TreeRender => {
                write!(f, "table={}", self.table)?;
                match self.partitions {
                    Some((read, total)) => write!(f, "\npartitions={read}/{total}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl ExecutionPlan for MetastoreScanExec {
    fn name(&self) -> &str {
        "MetastoreScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        // No expressions of its own.
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        Ok(Arc::new(Self {
            table: self.table.clone(),
            partitions: self.partitions,
            input,
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(Arc::clone(&input_stats[0]))
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}
