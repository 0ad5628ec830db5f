//! A metastore table survives the trip through Quarry's codecs (which wrap Ballista's):
//! the logical plan rebuilt over the metastore and the physical plan rebuilt in a fresh
//! "worker" context give the same rows as the original plans.

use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::physical_plan::{collect, displayable};
use datafusion::prelude::SessionContext;
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use quarry_files::MetastoreTable;
use quarry_metastore::StorageFormat;
use quarry_worker::{QuarryLogicalCodec, QuarryPhysicalCodec};

use crate::fixtures::{sales_fixture, table};

async fn rows(ctx: &SessionContext, plan: datafusion::logical_expr::LogicalPlan) -> String {
    let batches = ctx
        .execute_logical_plan(plan)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

#[tokio::test]
async fn metastore_tables_round_trip_through_the_codecs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let (metastore, sales) = sales_fixture(dir.path()).await;
    SessionContext::new()
        .sql(&format!(
            "COPY (SELECT * FROM (VALUES (7, 1.5), (8, NULL)) AS t(id, amount)) TO '{root}/text/data.csv' \
             STORED AS CSV OPTIONS ('format.has_header' 'false')"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = table(
        "text",
        &format!("file://{root}/text/"),
        StorageFormat::TextFile,
        false,
    );

    let ctx = SessionContext::new();
    ctx.register_table(
        "sales",
        Arc::new(MetastoreTable::try_new(sales, metastore.clone()).unwrap()),
    )
    .unwrap();
    ctx.register_table(
        "text",
        Arc::new(MetastoreTable::try_new(text, metastore.clone()).unwrap()),
    )
    .unwrap();

    let logical_codec = QuarryLogicalCodec::new(Some(metastore.clone()));
    let physical_codec = QuarryPhysicalCodec::default();
    for sql in [
        "SELECT region, sum(amount) AS total, count(*) AS n FROM sales WHERE region = 'eu' GROUP BY region",
        "SELECT s.id, s.region, t.amount FROM sales s JOIN text t ON s.id + 6 = t.id ORDER BY s.id",
    ] {
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.logical_plan().clone();
        let expected = rows(&ctx, plan.clone()).await;

        // Logical: as the client sends it to the scheduler.
        let bytes = logical_plan_to_bytes_with_extension_codec(&plan, &logical_codec).unwrap();
        let decoded =
            logical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &logical_codec)
                .unwrap();
        assert_eq!(
            rows(&ctx, decoded).await,
            expected,
            "logical round trip of {sql}"
        );

        // Physical: as the scheduler sends a stage to a worker with its own context.
        let physical = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let bytes =
            physical_plan_to_bytes_with_extension_codec(Arc::clone(&physical), &physical_codec)
                .unwrap();
        let worker = SessionContext::new();
        let decoded = physical_plan_from_bytes_with_extension_codec(
            &bytes,
            &worker.task_ctx(),
            &physical_codec,
        )
        .unwrap();
        assert_eq!(
            displayable(decoded.as_ref()).indent(true).to_string(),
            displayable(physical.as_ref()).indent(true).to_string(),
            "the decoded plan is the same plan"
        );
        let batches = collect(decoded, worker.task_ctx()).await.unwrap();
        assert_eq!(
            pretty_format_batches(&batches).unwrap().to_string(),
            expected,
            "physical round trip of {sql}"
        );
    }

    // Plans name the table's partitions read, and carry no metastore handle.
    let physical = ctx
        .sql("SELECT * FROM sales WHERE region = 'us'")
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let bytes = physical_plan_to_bytes_with_extension_codec(physical, &physical_codec).unwrap();
    let decoded = physical_plan_from_bytes_with_extension_codec(
        &bytes,
        &SessionContext::new().task_ctx(),
        &physical_codec,
    )
    .unwrap();
    assert!(
        displayable(decoded.as_ref())
            .indent(true)
            .to_string()
            .contains("MetastoreScanExec: table=default.sales, partitions=1/2")
    );
}
