//! What crawlers keep in the metastore, on every backend: SQLite (a temporary file) and the
//! machine's PostgreSQL and MariaDB, each in a database of its own that this test creates
//! and drops (so migration 0003 never lands in a database other branches share). Server
//! URLs: `QUARRY_TEST_PG_URL`, `QUARRY_TEST_MYSQL_URL`.

use std::collections::BTreeMap;

use quarry_metastore::{
    Column, CrawlerRun, Database, HiveType, Metastore, Partition, StorageDescriptor, StorageFormat,
    Table, TableChange, TableType,
};
use sqlx::{AssertSqlSafe, Connection, Executor};

fn server_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

fn own_database() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "quarry_crawler_test_{}_{}",
        std::process::id(),
        nanos % 1_000_000
    )
}

fn table(partitioned: bool) -> Table {
    Table {
        database: "raw".into(),
        name: "events".into(),
        table_type: TableType::External,
        columns: vec![Column::new("id", HiveType::BigInt)],
        partition_keys: if partitioned {
            vec![Column::new("dt", HiveType::String)]
        } else {
            vec![]
        },
        storage: StorageDescriptor {
            location: "s3://lake/raw/events/".into(),
            format: StorageFormat::Parquet,
            serde_properties: BTreeMap::new(),
        },
        properties: [("quarry.crawler".to_string(), "c".to_string())].into(),
        view_sql: None,
        statistics: None,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn partition(i: usize) -> Partition {
    Partition {
        values: vec![format!("{i:04}")],
        location: format!("s3://lake/raw/events/dt={i:04}/"),
    }
}

async fn exercise(store: Metastore) {
    assert!(store.put_crawler("c", "{\"v\":1}", false).await.unwrap());
    assert!(!store.put_crawler("c", "{\"v\":2}", false).await.unwrap());
    assert!(store.put_crawler("c", "{\"v\":3}", true).await.unwrap());
    store
        .set_crawler_state("c", "{\"folders\":{}}")
        .await
        .unwrap();
    let record = store.get_crawler("c").await.unwrap().unwrap();
    assert_eq!(record.definition, "{\"v\":3}");
    assert_eq!(record.state.as_deref(), Some("{\"folders\":{}}"));
    assert_eq!(store.list_crawlers().await.unwrap().len(), 1);

    let mut run = CrawlerRun {
        crawler: "c".into(),
        run_id: "r1".into(),
        started_at: "2026-11-26T01:00:00.000Z".into(),
        status: "RUNNING".into(),
        ..Default::default()
    };
    store.record_crawler_run(&run).await.unwrap();
    run.status = "SUCCEEDED".into();
    run.finished_at = Some("2026-11-26T01:00:01.000Z".into());
    run.partitions_added = 450;
    run.errors = "s3://lake/x: corrupt".into();
    store.record_crawler_run(&run).await.unwrap();
    assert_eq!(store.list_crawler_runs().await.unwrap(), vec![run.clone()]);

    // One run at a time across processes; a claim older than the cut-off is taken over and
    // the RUNNING record of its stopped process marked FAILED.
    let long_ago = "2000-01-01T00:00:00.000Z";
    assert!(store.claim_crawler("c", long_ago).await.unwrap());
    assert!(!store.claim_crawler("c", long_ago).await.unwrap());
    let interrupted = CrawlerRun {
        run_id: "r2".into(),
        started_at: "2026-11-26T02:00:00.000Z".into(),
        status: "RUNNING".into(),
        finished_at: None,
        ..run.clone()
    };
    store.record_crawler_run(&interrupted).await.unwrap();
    assert!(
        store
            .claim_crawler("c", "2999-01-01T00:00:00.000Z")
            .await
            .unwrap()
    );
    let runs = store.list_crawler_runs().await.unwrap();
    assert_eq!(runs[1].run_id, "r2");
    assert_eq!(runs[1].status, "FAILED");
    assert!(runs[1].errors.contains("interrupted"));
    assert_eq!(runs[0].status, "SUCCEEDED");
    store.release_crawler("c").await.unwrap();
    assert!(store.claim_crawler("c", long_ago).await.unwrap());
    store.release_crawler("c").await.unwrap();

    store
        .create_database(&Database::new("raw", "s3://lake/raw/"), true)
        .await
        .unwrap();
    // 450 partitions: three INSERT batches, one transaction with the table.
    let created = TableChange {
        table: table(true),
        create: true,
        add: (0..450).map(partition).collect(),
        remove: vec![],
    };
    let counts = store.apply_table_change(&created).await.unwrap();
    assert_eq!(counts.partitions_added, 450);
    let mut updated = table(true);
    updated.columns.push(Column::new("extra", HiveType::String));
    let change = TableChange {
        table: updated.clone(),
        create: false,
        // Ten new ones and one that exists already.
        add: (449..460).map(partition).collect(),
        remove: (0..5).map(|i| partition(i).values).collect(),
    };
    let counts = store.apply_table_change(&change).await.unwrap();
    assert_eq!(
        (counts.partitions_added, counts.partitions_removed),
        (10, 5)
    );
    assert_eq!(
        store.list_partitions("raw", "events").await.unwrap().len(),
        455
    );
    assert_eq!(
        store.require_table("raw", "events").await.unwrap().columns,
        updated.columns
    );
    // Creating it again fails whole: the table and its partitions stay as they were.
    assert!(store.apply_table_change(&created).await.is_err());
    assert_eq!(
        store.list_partitions("raw", "events").await.unwrap().len(),
        455
    );

    assert!(store.drop_crawler("c").await.unwrap());
    assert!(!store.drop_crawler("c").await.unwrap());
    assert_eq!(store.list_crawler_runs().await.unwrap().len(), 2);
}

#[tokio::test]
async fn crawler_store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(
        Metastore::open_sqlite(dir.path().join("metastore.db"))
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn crawler_store_on_postgres() {
    let server = server_url("QUARRY_TEST_PG_URL", "postgres://root@127.0.0.1:5432");
    let name = own_database();
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {server}: {e}"));
    conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let store = Metastore::open_url(&format!("{server}/{name}"))
        .await
        .unwrap();
    exercise(store.clone()).await;
    drop(store);
    conn.execute(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
        .await
        .unwrap();
}

#[tokio::test]
async fn crawler_store_on_mysql() {
    let server = server_url("QUARRY_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306");
    let name = own_database();
    let mut conn = sqlx::MySqlConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("MariaDB at {server}: {e}"));
    conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let store = Metastore::open_url(&format!("{server}/{name}"))
        .await
        .unwrap();
    exercise(store.clone()).await;
    drop(store);
    conn.execute(AssertSqlSafe(format!("DROP DATABASE {name}")))
        .await
        .unwrap();
}
