//! The 22 TPC-H queries at SF 0.01 through `quarry local -f`, compared with the reference
//! answers in tpch/answers/sf0.01.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const SF: f64 = 0.01;

fn quarry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_quarry"))
}

/// Result rows from JSON lines, values as text in column order.
fn rows_of(output: &str) -> Result<Vec<Vec<String>>, String> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let row: serde_json::Map<String, Value> =
                serde_json::from_str(line).map_err(|e| format!("bad JSON line {line}: {e}"))?;
            Ok(row
                .values()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => "NULL".to_string(),
                    other => other.to_string(),
                })
                .collect())
        })
        .collect()
}

#[test]
fn tpch_sf001_answers_through_quarry_local() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let setup = quarry()
        .args([
            "local",
            "--data-dir",
            data_dir,
            "--tpch-sf",
            "0.01",
            "-e",
            "SELECT 1",
        ])
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "setup failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );

    let mut failures = Vec::new();
    for n in 1..=22 {
        let file = data.path().join(format!("q{n:02}.sql"));
        std::fs::write(
            &file,
            format!("USE tpch;\n{}", quarry_tpch::query(n).unwrap()),
        )
        .unwrap();
        let output = quarry()
            .args(["local", "--data-dir", data_dir, "--format", "json", "-f"])
            .arg(Path::new(&file))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            failures.push(format!(
                "q{n} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
            continue;
        }
        let checked = rows_of(&stdout)
            .and_then(|rows| quarry_tpch::check_answer(quarry_tpch::answer(SF, n).unwrap(), &rows));
        if let Err(e) = checked {
            failures.push(format!("q{n}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 22 queries wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A Parquet table ANALYZE has not described still tells the planner its size, from its
/// files' footers (join selection puts the small side first with it; TPC-H SF 1 took 25 %
/// longer without, benches/RESULTS.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanalyzed_parquet_tables_report_row_counts_from_their_footers() {
    use datafusion::common::stats::Precision;
    use quarry_coordinator::{Engine, EngineConfig};

    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(data.path())).await.unwrap();
    let session = engine.new_session().unwrap();
    let folder = data.path().join("numbers");
    for (file, rows) in [("a.parquet", "1), (2), (3"), ("b.parquet", "4), (5")] {
        let copied = session
            .execute(&format!(
                "COPY (SELECT * FROM (VALUES ({rows})) AS v(x)) TO '{}' STORED AS PARQUET",
                folder.join(file).display()
            ))
            .await
            .unwrap();
        if let quarry_coordinator::Output::Rows(stream) = copied {
            datafusion::physical_plan::common::collect(stream)
                .await
                .unwrap();
        }
    }
    session
        .execute(&format!(
            "CREATE EXTERNAL TABLE numbers (x bigint) STORED AS PARQUET LOCATION '{}'",
            folder.display()
        ))
        .await
        .unwrap();
    let plan = session
        .context()
        .sql("SELECT x FROM numbers")
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let statistics = datafusion::physical_plan::StatisticsContext::default()
        .compute(
            plan.as_ref(),
            &datafusion::physical_plan::StatisticsArgs::new(),
        )
        .unwrap();
    assert_eq!(statistics.num_rows, Precision::Exact(5));
}
