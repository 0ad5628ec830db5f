//! The crawler end to end: layouts generated on the S3-protocol server and on local disk,
//! crawled by `CREATE CRAWLER`/`RUN CRAWLER` and by `quarry crawl`; the resulting tables,
//! columns, types and partitions are checked through SQL, and queries over them return
//! the rows written.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use datafusion::parquet::arrow::ArrowWriter;
use futures::TryStreamExt;
use quarry_coordinator::{Engine, EngineConfig, Output, Session};
use quarry_files::{BucketConfig, QuarryObjectStoreRegistry, S3Config};

use crate::servers::{S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, S3Server};

mod faults;

/// Runs one statement and returns its rows as text (NULL as "NULL").
async fn rows(session: &Session, sql: &str) -> Vec<Vec<String>> {
    let output = session
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", e.user_message()));
    let Output::Rows(stream) = output else {
        return Vec::new();
    };
    let batches: Vec<RecordBatch> = stream.try_collect().await.expect(sql);
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            out.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(row) {
                            "NULL".to_string()
                        } else {
                            array_value_to_string(c, row).unwrap()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

async fn run(session: &Session, sql: &str) {
    session
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", e.user_message()));
}

/// `DESCRIBE` as `name type` lines (before its partition information section).
async fn columns(session: &Session, table: &str) -> Vec<String> {
    rows(session, &format!("DESCRIBE {table}"))
        .await
        .into_iter()
        .take_while(|r| !r[0].is_empty() && !r[0].starts_with('#'))
        .map(|r| format!("{} {}", r[0], r[1]))
        .collect()
}

fn parquet(
    columns: Vec<(&str, Vec<Option<i64>>, bool)>,
    strings: Vec<(&str, Vec<&str>)>,
) -> Vec<u8> {
    let mut fields = Vec::new();
    let mut arrays: Vec<Arc<dyn datafusion::arrow::array::Array>> = Vec::new();
    for (name, values, as_double) in columns {
        if as_double {
            fields.push(Field::new(name, DataType::Float64, true));
            arrays.push(Arc::new(Float64Array::from(
                values
                    .into_iter()
                    .map(|v| v.map(|v| v as f64 / 2.0))
                    .collect::<Vec<_>>(),
            )));
        } else {
            fields.push(Field::new(name, DataType::Int64, true));
            arrays.push(Arc::new(Int64Array::from(values)));
        }
    }
    for (name, values) in strings {
        fields.push(Field::new(name, DataType::Utf8, true));
        arrays.push(Arc::new(StringArray::from(values)));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).unwrap();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    out
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

fn s3_config(server: &S3Server) -> S3Config {
    S3Config {
        default: BucketConfig {
            endpoint: Some(server.endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some(S3_ACCESS_KEY.into()),
            secret_access_key: Some(S3_SECRET_KEY.into()),
            session_token: None,
            path_style: Some(true),
        },
        buckets: Default::default(),
    }
}

/// Uploads objects through the S3 protocol.
struct Bucket {
    store: Arc<dyn ObjectStore>,
}

impl Bucket {
    fn new(config: &S3Config) -> Self {
        let registry = QuarryObjectStoreRegistry::new(config.clone());
        let url = url::Url::parse(&format!("s3://{S3_BUCKET}/")).unwrap();
        Self {
            store: registry.get_store(&url).unwrap(),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) {
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await
            .unwrap();
    }

    async fn delete(&self, key: &str) {
        self.store.delete(&ObjectPath::from(key)).await.unwrap();
    }
}

fn write(root: &Path, key: &str, bytes: impl AsRef<[u8]>) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// The last run of `crawler`: status, objects read, tables created/updated, partitions
/// added/removed, errors.
async fn last_run(session: &Session, crawler: &str) -> Vec<String> {
    let mut runs = rows(
        session,
        &format!(
            "SELECT status, objects_read, tables_created, tables_updated, partitions_added, \
             partitions_removed, errors, log FROM system.crawler.runs WHERE crawler = '{crawler}' \
             ORDER BY started"
        ),
    )
    .await;
    runs.pop().expect("a recorded run")
}

#[tokio::test]
async fn crawls_hive_date_and_mixed_format_layouts_on_s3_incrementally() {
    let server = S3Server::start();
    let config = s3_config(&server);
    let bucket = Bucket::new(&config);
    // Hive-style partitions; the newer partition gains a column.
    bucket
        .put(
            "raw/sales/year=2026/month=10/part-0.parquet",
            parquet(
                vec![
                    ("id", vec![Some(1), Some(2)], false),
                    ("amount", vec![Some(3), Some(5)], true),
                ],
                vec![],
            ),
        )
        .await;
    bucket
        .put(
            "raw/sales/year=2026/month=11/part-0.parquet",
            parquet(
                vec![
                    ("id", vec![Some(3)], false),
                    ("amount", vec![Some(7)], true),
                ],
                vec![("channel", vec!["web"])],
            ),
        )
        .await;
    bucket
        .put("raw/sales/year=2026/month=11/_SUCCESS", b"x".to_vec())
        .await;
    // Date-style folders of CSV with a header and quoting.
    bucket
        .put(
            "raw/clicks/2026/11/01/a.csv",
            b"user,page,ms\nann,\"/home, main\",120\nbob,/cart,95\n".to_vec(),
        )
        .await;
    bucket
        .put(
            "raw/clicks/2026/11/02/b.csv",
            b"user,page,ms\ncid,/home,80\n".to_vec(),
        )
        .await;
    // Excluded: a scratch folder of partial uploads (excluded files inside a table's folder
    // would still be read by queries, as in Athena).
    bucket
        .put("raw/scratch/upload.tmp", b"garbage".to_vec())
        .await;
    // Gzipped JSON lines.
    bucket
        .put(
            "raw/events/dt=2026-11-01/e.json.gz",
            gzip("{\"kind\":\"open\",\"n\":1}\n{\"kind\":\"close\",\"n\":2,\"extra\":{\"why\":\"idle\"}}\n"),
        )
        .await;

    let data = tempfile::tempdir().unwrap();
    let mut engine_config = EngineConfig::new(data.path());
    engine_config.s3 = config.clone();
    let wrong_secret = BucketConfig {
        secret_access_key: Some("wrong".into()),
        ..config.default.clone()
    };
    engine_config
        .s3
        .buckets
        .insert("badcreds".into(), wrong_secret);
    let engine = Engine::open(engine_config).await.unwrap();
    let session = engine.new_session().unwrap();
    run(
        &session,
        &format!(
            "CREATE CRAWLER lake_raw ON 's3://{S3_BUCKET}/raw/' INTO DATABASE lake \
             WITH (exclude = '*.tmp', delete_behavior = 'delete')"
        ),
    )
    .await;
    let shown = rows(&session, "SHOW CRAWLERS").await;
    assert_eq!(shown[0][0], "lake_raw");
    assert_eq!(shown[0][1], format!("s3://{S3_BUCKET}/raw/"));
    let result = rows(&session, "RUN CRAWLER lake_raw").await;
    assert_eq!(result[0][2], "SUCCEEDED", "{result:?}");

    assert_eq!(
        rows(&session, "SHOW TABLES IN lake").await,
        vec![vec!["clicks"], vec!["events"], vec!["sales"]]
    );
    assert_eq!(
        columns(&session, "lake.sales").await,
        [
            "id bigint",
            "amount double",
            "channel string",
            "year bigint",
            "month bigint"
        ]
    );
    assert_eq!(
        columns(&session, "lake.clicks").await,
        [
            "user string",
            "page string",
            "ms bigint",
            "partition_0 string",
            "partition_1 string",
            "partition_2 string"
        ]
    );
    assert_eq!(
        columns(&session, "lake.events").await,
        [
            "kind string",
            "n bigint",
            "extra struct<why:string>",
            "dt date"
        ]
    );
    assert_eq!(
        rows(&session, "SHOW PARTITIONS lake.clicks").await,
        vec![
            vec!["partition_0=2026/partition_1=11/partition_2=01"],
            vec!["partition_0=2026/partition_1=11/partition_2=02"]
        ]
    );
    assert_eq!(
        rows(
            &session,
            "SELECT id, amount, channel, month FROM lake.sales ORDER BY id"
        )
        .await,
        vec![
            vec!["1", "1.5", "NULL", "10"],
            vec!["2", "2.5", "NULL", "10"],
            vec!["3", "3.5", "web", "11"]
        ]
    );
    assert_eq!(
        rows(
            &session,
            "SELECT partition_2, count(*), sum(ms) FROM lake.clicks GROUP BY partition_2 ORDER BY 1"
        )
        .await,
        vec![vec!["01", "2", "215"], vec!["02", "1", "80"]]
    );
    assert_eq!(
        rows(
            &session,
            "SELECT page FROM lake.clicks WHERE \"user\" = 'ann'"
        )
        .await,
        vec![vec!["/home, main"]]
    );
    assert_eq!(
        rows(&session, "SELECT kind, n, dt FROM lake.events ORDER BY n").await,
        vec![
            vec!["open", "1", "2026-11-01"],
            vec!["close", "2", "2026-11-01"]
        ]
    );
    let first = last_run(&session, "lake_raw").await;
    assert_eq!(
        &first[..6],
        ["SUCCEEDED", "5", "3", "0", "5", "0"],
        "{first:?}"
    );

    // Data arrives: a new month, a corrupt file in another, the oldest month removed.
    bucket
        .put(
            "raw/sales/year=2026/month=12/part-0.parquet",
            parquet(
                vec![
                    ("id", vec![Some(4)], false),
                    ("amount", vec![Some(9)], true),
                ],
                vec![("channel", vec!["shop"])],
            ),
        )
        .await;
    bucket
        .put(
            "raw/sales/year=2027/month=1/part-0.parquet",
            b"PAR1 not really parquet".to_vec(),
        )
        .await;
    // A file of no recognizable format (binary, not Parquet or Avro).
    bucket
        .put(
            "raw/clicks/2026/11/03/blob.dat",
            vec![0, 159, 146, 150, 0, 1, 2, 3],
        )
        .await;
    bucket
        .delete("raw/sales/year=2026/month=10/part-0.parquet")
        .await;
    run(&session, "RUN CRAWLER lake_raw").await;
    let second = last_run(&session, "lake_raw").await;
    // Only the three new files were read; the unchanged folders came from the last run.
    assert_eq!(
        &second[..6],
        ["SUCCEEDED_WITH_ERRORS", "3", "0", "1", "1", "1"],
        "{second:?}"
    );
    assert!(
        second[6].contains(&format!(
            "s3://{S3_BUCKET}/raw/sales/year=2027/month=1/part-0.parquet"
        )),
        "the error names the corrupt object: {}",
        second[6]
    );
    assert!(
        second[6].contains(&format!(
            "s3://{S3_BUCKET}/raw/clicks/2026/11/03/blob.dat: no recognizable format"
        )),
        "{}",
        second[6]
    );
    assert_eq!(
        rows(&session, "SELECT count(*) FROM lake.clicks").await,
        vec![vec!["3"]]
    );
    assert_eq!(
        rows(&session, "SHOW PARTITIONS lake.sales").await,
        vec![vec!["year=2026/month=11"], vec!["year=2026/month=12"]]
    );
    assert_eq!(
        rows(&session, "SELECT id, channel FROM lake.sales ORDER BY id").await,
        vec![vec!["3", "web"], vec!["4", "shop"]]
    );

    // Permission errors: bucket "badcreds" is reached with a wrong secret. The run fails
    // cleanly, names the location, and touches no table.
    run(
        &session,
        "CREATE CRAWLER denied ON 's3://badcreds/raw/' INTO DATABASE lake",
    )
    .await;
    let result = rows(&session, "RUN CRAWLER denied").await;
    assert_eq!(result[0][2], "FAILED");
    let failed = last_run(&session, "denied").await;
    assert_eq!(failed[0], "FAILED");
    assert!(
        failed[6].contains("cannot list s3://badcreds/raw/"),
        "{}",
        failed[6]
    );
    assert_eq!(
        rows(&session, "SHOW TABLES IN lake").await,
        vec![vec!["clicks"], vec!["events"], vec!["sales"]]
    );
    run(&session, "DROP CRAWLER denied").await;
    run(&session, "DROP CRAWLER lake_raw").await;
    assert!(rows(&session, "SHOW CRAWLERS").await.is_empty());
}

#[tokio::test]
async fn schema_changes_are_logged_or_applied_and_misfits_split_on_local_disk() {
    let files = tempfile::tempdir().unwrap();
    let root = files.path();
    let root_text = root.display().to_string();
    // One table whose location holds hive partitions.
    write(
        root,
        "metrics/dt=2026-11-01/a.parquet",
        parquet(vec![("v", vec![Some(1), Some(2)], false)], vec![]),
    );
    // Plain folders at the table root: eu and us fit together, apac is CSV.
    write(
        root,
        "regions/eu/a.parquet",
        parquet(
            vec![("id", vec![Some(1)], false)],
            vec![("name", vec!["x"])],
        ),
    );
    write(
        root,
        "regions/us/b.parquet",
        parquet(
            vec![("id", vec![Some(2)], false)],
            vec![("name", vec!["y"])],
        ),
    );
    write(
        root,
        "regions/apac/c.csv",
        "code|label\n007|tokyo\n010|osaka\n",
    );
    write(root, "regions/apac/empty.csv", "");
    std::fs::create_dir_all(root.join("regions/void")).unwrap();

    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(data.path())).await.unwrap();
    let session = engine.new_session().unwrap();
    run(
        &session,
        &format!(
            "CREATE CRAWLER metrics ON '{root_text}/metrics' INTO DATABASE disk \
             WITH (schema_change = 'log', table_prefix = 'm_')"
        ),
    )
    .await;
    run(&session, "RUN CRAWLER metrics").await;
    // The location itself is the table (it holds partition folders).
    assert_eq!(
        rows(&session, "SHOW TABLES IN disk").await,
        vec![vec!["m_metrics"]]
    );
    assert_eq!(
        columns(&session, "disk.m_metrics").await,
        ["v bigint", "dt date"]
    );

    // A partition gains a column and changes the type of another. It sorts before the
    // first one: the table's columns, not the first folder, decide which one misfits.
    write(
        root,
        "metrics/dt=2026-10-31/a.parquet",
        parquet(vec![("w", vec![Some(5)], false)], vec![("v", vec!["oops"])]),
    );
    write(
        root,
        "metrics/dt=2026-11-03/a.parquet",
        parquet(
            vec![("v", vec![Some(3)], false), ("w", vec![Some(6)], false)],
            vec![],
        ),
    );
    run(&session, "RUN CRAWLER metrics").await;
    let log_run = last_run(&session, "metrics").await;
    assert_eq!(log_run[0], "SUCCEEDED_WITH_ERRORS", "{log_run:?}");
    assert!(log_run[6].contains("column \"v\""), "{}", log_run[6]);
    assert!(
        log_run[7].contains("new column w bigint not added"),
        "{}",
        log_run[7]
    );
    // Consistent: columns kept, the misfit partition left out, queries work.
    assert_eq!(
        columns(&session, "disk.m_metrics").await,
        ["v bigint", "dt date"]
    );
    assert_eq!(
        rows(&session, "SELECT v, dt FROM disk.m_metrics ORDER BY v").await,
        vec![
            vec!["1", "2026-11-01"],
            vec!["2", "2026-11-01"],
            vec!["3", "2026-11-03"]
        ]
    );

    // With schema_change = 'update' the new column is added.
    run(
        &session,
        &format!(
            "CREATE OR REPLACE CRAWLER metrics ON '{root_text}/metrics' INTO DATABASE disk \
             WITH (schema_change = 'update', table_prefix = 'm_')"
        ),
    )
    .await;
    run(&session, "RUN CRAWLER metrics").await;
    assert_eq!(
        columns(&session, "disk.m_metrics").await,
        ["v bigint", "w bigint", "dt date"]
    );
    assert_eq!(
        rows(
            &session,
            "SELECT v, w FROM disk.m_metrics WHERE dt = DATE '2026-11-03'"
        )
        .await,
        vec![vec!["3", "6"]]
    );

    // Plain folders that do not fit become their own table, and the log says why.
    run(
        &session,
        &format!("CREATE CRAWLER regions ON '{root_text}/regions/' INTO DATABASE disk WITH (table_level = {})",
            root.components().count()),
    )
    .await;
    run(&session, "RUN CRAWLER regions").await;
    assert_eq!(
        rows(&session, "SHOW TABLES IN disk").await,
        vec![vec!["m_metrics"], vec!["regions"], vec!["regions_apac"]]
    );
    assert_eq!(
        columns(&session, "disk.regions").await,
        ["id bigint", "name string", "partition_0 string"]
    );
    assert_eq!(
        columns(&session, "disk.regions_apac").await,
        ["code string", "label string", "partition_0 string"]
    );
    assert_eq!(
        rows(
            &session,
            "SELECT name, partition_0 FROM disk.regions ORDER BY id"
        )
        .await,
        vec![vec!["x", "eu"], vec!["y", "us"]]
    );
    assert_eq!(
        rows(
            &session,
            "SELECT code, label FROM disk.regions_apac ORDER BY code"
        )
        .await,
        vec![vec!["007", "tokyo"], vec!["010", "osaka"]]
    );
    let regions = last_run(&session, "regions").await;
    assert!(regions[7].contains("split from regions"), "{}", regions[7]);

    // Schedules: a crawler whose scheduled time passed since it was created is due (what
    // the scheduler of `quarry local --listen` and `quarry coordinator` runs each tick);
    // unscheduled crawlers never are.
    run(
        &session,
        &format!(
            "CREATE CRAWLER hourly ON '{root_text}/metrics' INTO DATABASE scheduled \
             WITH (schedule = '0 * * * *')"
        ),
    )
    .await;
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let ran = engine.crawlers().run_due(later).await.unwrap();
    assert_eq!(
        ran.iter().map(|r| r.crawler.as_str()).collect::<Vec<_>>(),
        ["hourly"]
    );
    assert_eq!(
        rows(&session, "SHOW TABLES IN scheduled").await,
        vec![vec!["metrics"]]
    );
    let err = session
        .execute("CREATE CRAWLER eager ON '/tmp' INTO DATABASE x WITH (schedule = '* * * * *')")
        .await
        .err()
        .expect("a schedule under 5 minutes is refused");
    assert!(err.user_message().contains("minimum interval is 5 minutes"));
}

#[test]
fn quarry_crawl_command_fills_the_metastore_of_a_data_directory() {
    let files = tempfile::tempdir().unwrap();
    let root = files.path();
    write(root, "web/2026/11/01/log.tsv", "ann\t3\nbob\t4\n");
    write(root, "web/2026/11/02/log.tsv", "cid\t5\n");
    write(root, "web/2026/11/02/.hidden", "not data");
    // Avro, and zstd-compressed CSV.
    let schema = Arc::new(Schema::new(vec![
        Field::new("player", DataType::Utf8, false),
        Field::new("score", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["ann", "bob"])),
            Arc::new(Int64Array::from(vec![7, 9])),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(root.join("scores")).unwrap();
    let file = std::fs::File::create(root.join("scores/part-0.avro")).unwrap();
    let mut writer = arrow_avro::writer::AvroWriter::new(file, schema.as_ref().clone()).unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();
    write(
        root,
        "notes/n.csv.zst",
        zstd::encode_all("day,note\n2026-11-01,\"hello, world\"\n".as_bytes(), 3).unwrap(),
    );
    let data = tempfile::tempdir().unwrap();
    let crawl = std::process::Command::new(env!("CARGO_BIN_EXE_quarry"))
        .arg("crawl")
        .arg(root)
        .args([
            "--database",
            "logs",
            "--partition-names",
            "year,month,day",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&crawl.stdout);
    assert!(
        crawl.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&crawl.stderr)
    );
    assert!(stdout.contains("crawler crawl_logs: SUCCEEDED"), "{stdout}");
    let query = std::process::Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args(["local", "--no-tpch", "--format", "csv", "--data-dir"])
        .arg(data.path())
        .args([
            "-e",
            "SELECT col0, col1, year, month, day FROM logs.web ORDER BY col0; \
             SELECT player, score FROM logs.scores ORDER BY score; \
             SELECT day + INTERVAL '1 day' AS next_day, note FROM logs.notes; \
             SELECT crawler, status, tables_created, partitions_added FROM system.crawler.runs",
        ])
        .output()
        .unwrap();
    assert!(
        query.status.success(),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&query.stdout),
        "col0,col1,year,month,day\n\
         ann,3,2026,11,01\n\
         bob,4,2026,11,01\n\
         cid,5,2026,11,02\n\
         player,score\n\
         ann,7\n\
         bob,9\n\
         next_day,note\n\
         2026-11-02,\"hello, world\"\n\
         crawler,status,tables_created,partitions_added\n\
         crawl_logs,SUCCEEDED,3,2\n"
    );
}

#[tokio::test]
async fn quarry_crawl_command_reads_s3_buckets_from_the_configuration() {
    let server = S3Server::start();
    let config = s3_config(&server);
    Bucket::new(&config)
        .put(
            "cli/orders/region=eu/o.json",
            b"{\"id\":1,\"total\":9.5}\n{\"id\":2,\"total\":3.25}\n".to_vec(),
        )
        .await;
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("quarry.toml"),
        format!(
            "[s3.default]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"{S3_ACCESS_KEY}\"\n\
             secret_access_key = \"{S3_SECRET_KEY}\"\npath_style = true\n",
            server.endpoint
        ),
    )
    .unwrap();
    let crawl = std::process::Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args([
            "crawl",
            &format!("s3://{S3_BUCKET}/cli/"),
            "--database",
            "shop",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        crawl.status.success(),
        "{}{}",
        String::from_utf8_lossy(&crawl.stdout),
        String::from_utf8_lossy(&crawl.stderr)
    );
    let query = std::process::Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args(["local", "--no-tpch", "--format", "csv", "--data-dir"])
        .arg(data.path())
        .args([
            "-e",
            "SELECT id, total, region FROM shop.orders ORDER BY id",
        ])
        .output()
        .unwrap();
    assert!(
        query.status.success(),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&query.stdout),
        "id,total,region\n1,9.5,eu\n2,3.25,eu\n"
    );
}
