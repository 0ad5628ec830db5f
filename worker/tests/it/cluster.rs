//! A metastore table queried through a real Ballista cluster in this process: a scheduler
//! with Quarry's codecs (decoding logical plans over the metastore) and one executor with
//! Quarry's physical codec, reached over gRPC and Arrow Flight on loopback.

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::Duration;

use ballista::extension::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use quarry_files::MetastoreTable;
use quarry_worker::{QuarryLogicalCodec, QuarryPhysicalCodec};

use crate::fixtures::sales_fixture;

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_metastore_table_runs_on_a_ballista_executor() {
    let dir = tempfile::tempdir().unwrap();
    let (metastore, sales) = sales_fixture(dir.path()).await;

    // Scheduler, in this process, on a real port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheduler_port = listener.local_addr().unwrap().port();
    let config = Arc::new(SchedulerConfig {
        bind_host: "127.0.0.1".into(),
        external_host: "127.0.0.1".into(),
        bind_port: scheduler_port,
        override_logical_codec: Some(Arc::new(QuarryLogicalCodec::new(Some(metastore.clone())))),
        override_physical_codec: Some(Arc::new(QuarryPhysicalCodec::default())),
        ..Default::default()
    });
    let cluster = BallistaCluster::new_from_config(&config).await.unwrap();
    let scheduler = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, config)
        .await
        .unwrap();
    tokio::spawn(start_grpc_service_with_listener(listener, scheduler));

    // One executor with Quarry's physical codec.
    let work_dir = dir.path().join("work");
    std::fs::create_dir_all(&work_dir).unwrap();
    let executor = ExecutorProcessConfig {
        bind_host: "127.0.0.1".into(),
        external_host: Some("127.0.0.1".into()),
        port: free_port(),
        grpc_port: free_port(),
        scheduler_host: "127.0.0.1".into(),
        scheduler_port,
        scheduler_connect_timeout_seconds: 10,
        vcores: 2,
        work_dir: Some(work_dir.display().to_string()),
        override_logical_codec: Some(Arc::new(QuarryLogicalCodec::new(None))),
        override_physical_codec: Some(Arc::new(QuarryPhysicalCodec::default())),
        ..Default::default()
    };
    tokio::spawn(start_executor_process(Arc::new(executor)));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The client plans locally and submits the logical plan to the scheduler.
    let client_config = SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::new(QuarryLogicalCodec::new(None)))
        .with_ballista_physical_extension_codec(Arc::new(QuarryPhysicalCodec::default()));
    let state = SessionStateBuilder::new()
        .with_config(client_config)
        .with_default_features()
        .build();
    let ctx = SessionContext::remote_with_state(&format!("df://127.0.0.1:{scheduler_port}"), state)
        .await
        .unwrap();
    ctx.register_table(
        "sales",
        Arc::new(MetastoreTable::try_new(sales.clone(), metastore.clone()).unwrap()),
    )
    .unwrap();

    let local = SessionContext::new();
    local
        .register_table(
            "sales",
            Arc::new(MetastoreTable::try_new(sales, metastore).unwrap()),
        )
        .unwrap();
    for sql in [
        "SELECT region, sum(amount) AS total, count(*) AS n FROM sales GROUP BY region ORDER BY region",
        "SELECT id, amount FROM sales WHERE region = 'eu' ORDER BY id",
    ] {
        // The query is the cluster's: the client's plan is only the submission.
        let submitted = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let shown = datafusion::physical_plan::displayable(submitted.as_ref())
            .indent(false)
            .to_string();
        assert!(shown.contains("DistributedQueryExec"), "{shown}");
        let expected =
            pretty_format_batches(&local.sql(sql).await.unwrap().collect().await.unwrap())
                .unwrap()
                .to_string();
        let batches = tokio::time::timeout(Duration::from_secs(60), async {
            ctx.sql(sql).await?.collect().await
        })
        .await
        .expect("the cluster answers within 60 s")
        .unwrap();
        assert_eq!(
            pretty_format_batches(&batches).unwrap().to_string(),
            expected,
            "{sql}"
        );
    }
}
