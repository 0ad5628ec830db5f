//! The same metastore behaviour on every backend: SQLite (a temporary file), and the real
//! PostgreSQL and MariaDB servers of the machine, in a database these tests create
//! (`quarry_metastore_test`) and never drop. Server URLs: `QUARRY_TEST_PG_URL`,
//! `QUARRY_TEST_MYSQL_URL` (defaults: root on 127.0.0.1, the machine's trust setup).

use std::collections::BTreeMap;

use quarry_metastore::{
    Column, Database, HiveType, Metastore, MetastoreError, Partition, ScramVerifier,
    StorageDescriptor, StorageFormat, Table, TableType, UserRecord,
};
use sqlx::{AssertSqlSafe, Connection, Executor};

const TEST_DATABASE: &str = "quarry_metastore_test";

fn server_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// Creates the test database on a server when missing; returns the metastore URL.
async fn postgres_url() -> String {
    postgres_url_of(TEST_DATABASE).await
}

async fn postgres_url_of(database: &str) -> String {
    let server = server_url("QUARRY_TEST_PG_URL", "postgres://root@127.0.0.1:5432");
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {server} (scripts/test.sh starts it): {e}"));
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(database)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    if exists.is_none() {
        // Two test runs may race here; the loser sees "already exists", which is fine.
        let _ = conn
            .execute(AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .await;
    }
    format!("{server}/{database}")
}

async fn mysql_url() -> String {
    mysql_url_of(TEST_DATABASE).await
}

async fn mysql_url_of(database: &str) -> String {
    let server = server_url("QUARRY_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306");
    let mut conn = sqlx::MySqlConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("MariaDB at {server} (scripts/test.sh starts it): {e}"));
    conn.execute(AssertSqlSafe(format!(
        "CREATE DATABASE IF NOT EXISTS {database}"
    )))
    .await
    .unwrap();
    format!("{server}/{database}")
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

fn table(database: &str, name: &str) -> Table {
    Table {
        database: database.into(),
        name: name.into(),
        table_type: TableType::External,
        columns: vec![
            Column::new("id", HiveType::BigInt),
            Column::new("tags", HiveType::parse("array<string>").unwrap()),
        ],
        partition_keys: vec![
            Column::new("dt", HiveType::Date),
            Column::new("region", HiveType::String),
        ],
        storage: StorageDescriptor {
            location: "s3://bucket/t/".into(),
            format: StorageFormat::Parquet,
            serde_properties: BTreeMap::new(),
        },
        properties: [("owner".to_string(), "ops".to_string())].into(),
        view_sql: None,
        statistics: None,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

/// Everything a statement may do to the metastore, and the errors that leave it unchanged.
async fn exercise(store: Metastore) {
    let db_name = unique("db");
    let db = Database::new(&db_name, "s3://bucket/db/");
    assert!(store.create_database(&db, false).await.unwrap());
    assert!(!store.create_database(&db, true).await.unwrap());
    assert!(matches!(
        store.create_database(&db, false).await,
        Err(MetastoreError::DatabaseExists(_))
    ));
    assert_eq!(store.get_database(&db_name).await.unwrap().unwrap(), db);

    let t = table(&db_name, "events");
    assert!(store.create_table(&t, false, false).await.unwrap());
    assert!(matches!(
        store.create_table(&t, false, false).await,
        Err(MetastoreError::TableExists { .. })
    ));
    let stored = store.require_table(&db_name, "events").await.unwrap();
    assert_eq!(
        (stored.columns.clone(), stored.partition_keys.clone()),
        (t.columns.clone(), t.partition_keys.clone())
    );
    assert_eq!(stored.properties, t.properties);
    let missing = table("no_such_db", "x");
    assert!(matches!(
        store.create_table(&missing, false, false).await,
        Err(MetastoreError::DatabaseNotFound(_))
    ));

    let partitions = vec![
        Partition {
            values: vec!["2026-11-01".into(), "eu".into()],
            location: "s3://bucket/a/".into(),
        },
        Partition {
            values: vec!["2026-11-01".into(), "us".into()],
            location: "s3://other/b/".into(),
        },
    ];
    assert_eq!(
        store.add_partitions(&t, &partitions, false).await.unwrap(),
        2
    );
    // A batch with one existing partition fails whole, adding nothing.
    let more = vec![
        Partition {
            values: vec!["2026-11-02".into(), "eu".into()],
            location: "s3://bucket/c/".into(),
        },
        partitions[0].clone(),
    ];
    assert!(matches!(
        store.add_partitions(&t, &more, false).await,
        Err(MetastoreError::PartitionExists { .. })
    ));
    assert_eq!(
        store.list_partitions(&db_name, "events").await.unwrap(),
        partitions
    );
    assert_eq!(store.add_partitions(&t, &more, true).await.unwrap(), 1);
    let dropped = store
        .drop_partitions(&t, &[vec!["2026-11-01".into(), "us".into()]], false)
        .await
        .unwrap();
    assert_eq!(dropped[0].location, "s3://other/b/");
    assert!(matches!(
        store
            .drop_partitions(&t, &[vec!["2026-11-01".into(), "us".into()]], false)
            .await,
        Err(MetastoreError::PartitionNotFound { .. })
    ));
    assert_eq!(
        store
            .list_partitions(&db_name, "events")
            .await
            .unwrap()
            .len(),
        2
    );

    assert!(matches!(
        store.drop_database(&db_name, false).await,
        Err(MetastoreError::DatabaseNotEmpty { tables: 1, .. })
    ));
    assert!(store.get_table(&db_name, "events").await.unwrap().is_some());
    let (_, tables) = store.drop_database(&db_name, true).await.unwrap().unwrap();
    assert_eq!(tables.len(), 1);
    assert!(store.get_database(&db_name).await.unwrap().is_none());
    assert!(store.drop_database(&db_name, true).await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite_metastore() {
    let dir = tempfile::tempdir().unwrap();
    exercise(
        Metastore::open_sqlite(dir.path().join("metastore.db"))
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn postgres_metastore() {
    exercise(Metastore::open_url(&postgres_url().await).await.unwrap()).await;
}

#[tokio::test]
async fn mysql_metastore() {
    exercise(Metastore::open_url(&mysql_url().await).await.unwrap()).await;
}

/// Users and their SCRAM verifiers: stored, changed and dropped alike on every backend.
async fn exercise_users(store: Metastore) {
    let name = unique("user");
    let verifier = ScramVerifier {
        salt: vec![0, 1, 2, 250, 255],
        iterations: 4096,
        salted_password: (0u8..32).collect(),
    };
    let user = UserRecord {
        name: name.clone(),
        verifier: verifier.clone(),
        admin: true,
    };
    store.create_user(&user).await.unwrap();
    assert!(store.count_users().await.unwrap() >= 1);
    assert_eq!(store.get_user(&name).await.unwrap(), Some(user.clone()));
    let listed = store.list_users().await.unwrap();
    assert!(listed.contains(&user), "{name} not in {listed:?}");
    assert!(matches!(
        store.create_user(&user).await,
        Err(MetastoreError::UserExists(n)) if n == name
    ));
    let changed = ScramVerifier {
        salt: vec![9; 16],
        iterations: 8192,
        salted_password: vec![7; 32],
    };
    store
        .alter_user(&name, Some(&changed), Some(false))
        .await
        .unwrap();
    let stored = store.get_user(&name).await.unwrap().unwrap();
    assert_eq!((stored.verifier, stored.admin), (changed, false));
    assert!(matches!(
        store.alter_user(&unique("nobody"), None, Some(true)).await,
        Err(MetastoreError::UserNotFound(_))
    ));
    assert!(store.drop_user(&name).await.unwrap());
    assert!(!store.drop_user(&name).await.unwrap());
    assert_eq!(store.get_user(&name).await.unwrap(), None);
}

/// The users' own server databases: a migration newer than other checkouts know must not
/// reach the database those share.
const USERS_TEST_DATABASE: &str = "quarry_metastore_users_test";

#[tokio::test]
async fn users_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    exercise_users(
        Metastore::open_sqlite(dir.path().join("metastore.db"))
            .await
            .unwrap(),
    )
    .await;
    exercise_users(
        Metastore::open_url(&postgres_url_of(USERS_TEST_DATABASE).await)
            .await
            .unwrap(),
    )
    .await;
    exercise_users(
        Metastore::open_url(&mysql_url_of(USERS_TEST_DATABASE).await)
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn unknown_url_schemes_are_refused_by_name() {
    let err = Metastore::open_url("oracle://x/y").await.unwrap_err();
    assert!(err.to_string().contains("\"oracle\""), "{err}");
}
