//! The table both tests use: `default.sales`, Parquet partitioned by region, with its
//! partitions registered in an SQLite metastore in a temporary folder.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::prelude::SessionContext;
use quarry_metastore::{
    Column, Database, HiveType, Metastore, Partition, StorageDescriptor, StorageFormat, Table,
    TableType,
};

pub(crate) fn table(name: &str, location: &str, format: StorageFormat, partitioned: bool) -> Table {
    Table {
        database: "default".into(),
        name: name.into(),
        table_type: TableType::External,
        columns: vec![
            Column::new("id", HiveType::BigInt),
            Column::new("amount", HiveType::Double),
        ],
        partition_keys: if partitioned {
            vec![Column::new("region", HiveType::String)]
        } else {
            vec![]
        },
        storage: StorageDescriptor {
            location: location.into(),
            format,
            serde_properties: quarry_files::serde_defaults(format)
                .into_iter()
                .chain(if format == StorageFormat::TextFile {
                    vec![("field.delim".to_string(), ",".to_string())]
                } else {
                    vec![]
                })
                .collect::<BTreeMap<_, _>>(),
        },
        properties: BTreeMap::new(),
        view_sql: None,
        statistics: None,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

/// Writes `sales` (ids 1-3, regions eu/us) under `dir` and registers it with its partitions.
pub(crate) async fn sales_fixture(dir: &Path) -> (Metastore, Table) {
    let root = dir.display().to_string();
    SessionContext::new()
        .sql(&format!(
            "COPY (SELECT * FROM (VALUES (1, 10.5, 'eu'), (2, 20.0, 'us'), (3, 30.25, 'eu')) \
             AS t(id, amount, region)) TO '{root}/sales/' STORED AS PARQUET PARTITIONED BY (region)"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let metastore = Metastore::open_sqlite(dir.join("metastore.db"))
        .await
        .unwrap();
    metastore
        .create_database(&Database::new("default", format!("file://{root}/")), true)
        .await
        .unwrap();
    let sales = table(
        "sales",
        &format!("file://{root}/sales/"),
        StorageFormat::Parquet,
        true,
    );
    metastore.create_table(&sales, false, false).await.unwrap();
    let partitions = ["eu", "us"].map(|r| Partition {
        values: vec![r.into()],
        location: format!("file://{root}/sales/region={r}/"),
    });
    metastore
        .add_partitions(&sales, &partitions, false)
        .await
        .unwrap();
    (metastore, sales)
}
