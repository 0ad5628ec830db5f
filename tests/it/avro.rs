//! Avro tables: DataFusion cannot write Avro, so the fixture is written with arrow-avro.

use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use futures::TryStreamExt;
use quarry_coordinator::{Engine, EngineConfig, Output};

#[tokio::test]
async fn avro_tables_read_by_column_name() {
    let files = tempfile::tempdir().unwrap();
    let dir = files.path().join("events");
    std::fs::create_dir_all(&dir).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            Arc::new(Float64Array::from(vec![Some(0.5), Some(1.5), None])),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.join("part-0.avro")).unwrap();
    let mut writer = arrow_avro::writer::AvroWriter::new(file, schema.as_ref().clone()).unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();

    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(data.path())).await.unwrap();
    let session = engine.new_session().unwrap();
    let ddl = format!(
        "CREATE EXTERNAL TABLE events (score double, id bigint, missing string) STORED AS AVRO LOCATION '{}'",
        dir.display()
    );
    assert!(matches!(
        session.execute(&ddl).await.unwrap(),
        Output::Done(_)
    ));
    let Output::Rows(stream) = session
        .execute("SELECT id, score, missing IS NULL AS missing_is_null FROM events ORDER BY id")
        .await
        .unwrap()
    else {
        panic!("a query returns rows")
    };
    let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert_eq!(
        text,
        "+----+-------+-----------------+\n\
         | id | score | missing_is_null |\n\
         +----+-------+-----------------+\n\
         | 1  | 0.5   | true            |\n\
         | 2  | 1.5   | true            |\n\
         | 3  |       | true            |\n\
         +----+-------+-----------------+"
    );
}
