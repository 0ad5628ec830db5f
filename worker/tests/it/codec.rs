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

/// Remote tables, pushed joins and aggregates (remote queries) and their scans travel as
/// plain data: the catalog, the statements and the schema with the source types.
#[tokio::test]
async fn remote_tables_and_queries_round_trip_through_the_codecs() {
    use std::collections::HashMap;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::catalog::TableProvider;
    use datafusion::datasource::{provider_as_source, source_as_provider};
    use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
    use quarry_connectors::{ConnectorKind, RemoteQuery, RemoteTable, RemoteTableSpec};

    let spec = RemoteTableSpec {
        catalog: "src".to_string(),
        version: 3,
        kind: ConnectorKind::Postgres,
        schema: "shop".to_string(),
        table: "orders".to_string(),
        splits: 2,
        join_pushdown: true,
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("c0", DataType::Int64, false).with_metadata(HashMap::from([(
            "source_type".to_string(),
            "bigint".to_string(),
        )])),
        Field::new("c1", DataType::Decimal128(20, 2), true),
    ]));
    let sql = "SELECT t0.c0 AS c0, CAST(sum(t0.c1) AS numeric(20, 2)) AS c1 FROM (SELECT \"id\" AS c0, \"amount\" AS c1 FROM \"shop\".\"orders\") AS t0 GROUP BY t0.c0";
    let query: Arc<dyn TableProvider> = Arc::new(RemoteQuery::new(
        spec.clone(),
        sql.to_string(),
        Arc::clone(&schema),
    ));
    let table: Arc<dyn TableProvider> =
        Arc::new(RemoteTable::new(spec.clone(), Arc::clone(&schema)));

    let ctx = SessionContext::new();
    let logical_codec = QuarryLogicalCodec::new(None);
    for provider in [Arc::clone(&query), table] {
        let plan = LogicalPlanBuilder::scan("q", provider_as_source(provider), None)
            .unwrap()
            .build()
            .unwrap();
        let bytes = logical_plan_to_bytes_with_extension_codec(&plan, &logical_codec).unwrap();
        let decoded =
            logical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &logical_codec)
                .unwrap();
        let LogicalPlan::TableScan(scan) = decoded else {
            panic!("a table scan decodes as one: {decoded:?}");
        };
        let provider = source_as_provider(&scan.source).unwrap();
        assert_eq!(provider.schema(), schema, "schema and source types survive");
        if let Some(decoded) = provider.downcast_ref::<RemoteQuery>() {
            assert_eq!(decoded.sql(), sql);
            assert_eq!(decoded.spec(), &spec);
        } else {
            let decoded = provider
                .downcast_ref::<RemoteTable>()
                .expect("a remote table decodes as one");
            assert_eq!(decoded.spec(), &spec);
        }
    }

    // The remote query's scan, as a stage sends it to a worker.
    let physical = query.scan(&ctx.state(), None, &[], None).await.unwrap();
    let physical_codec = QuarryPhysicalCodec::default();
    let bytes = physical_plan_to_bytes_with_extension_codec(Arc::clone(&physical), &physical_codec)
        .unwrap();
    let decoded =
        physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &physical_codec)
            .unwrap();
    let text = displayable(decoded.as_ref()).indent(true).to_string();
    assert_eq!(
        text,
        displayable(physical.as_ref()).indent(true).to_string()
    );
    assert!(
        text.contains(&format!(
            "RemoteScanExec: catalog=src, sql=SELECT * FROM ({sql}) AS q"
        )),
        "{text}"
    );
}
