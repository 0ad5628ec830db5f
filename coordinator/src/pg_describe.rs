//! The functions psql's `\df`, `\dT`, `\dt+` and `\d+` call to describe objects, answered
//! from the PostgreSQL catalog rows datafusion-pg-catalog ships (`pg_proc`, `pg_type`,
//! `pg_description`):
//!
//! * `pg_get_function_result(oid)`: `integer`, `SETOF record`, `TABLE(name type, ...)`;
//! * `pg_get_function_arguments(oid)`: `text, integer`, `OUT word text, ...` (argument
//!   defaults are not shown: the shipped rows keep them as unparsed expression trees);
//! * `obj_description(oid [, catalog])`, `col_description(table, column)`: the comment on an
//!   object; Quarry's own tables and columns have none there (NULL);
//! * `pg_size_pretty(bigint)`: a byte count as PostgreSQL prints it (`8192 bytes`, `10 kB`);
//! * `pg_table_size(oid)`, `pg_indexes_size(oid)`, `pg_database_size(name | oid)`: NULL, as
//!   for an unknown relation: Quarry does not report sizes through pg_catalog (the library's
//!   `pg_relation_size` answers 0);
//! * `shobj_description(oid, catalog)`: NULL (no comments on shared objects);
//! * `pg_has_role([user,] role, privilege)`: false: Quarry has users but no roles to be a
//!   member of (psql's `\l+` asks about `pg_read_all_stats`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Int64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::exec_err;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables;
use datafusion_pg_catalog::pg_catalog::format_type::create_format_type_udf;

/// The functions, to register in every session.
pub(crate) fn describe_functions() -> Vec<ScalarUDF> {
    let oid = || {
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Int32]),
                TypeSignature::Exact(vec![DataType::Int64]),
            ],
            Volatility::Stable,
        )
    };
    let function = |name, signature, returns| {
        ScalarUDF::new_from_impl(Describe {
            name,
            signature,
            returns,
        })
    };
    vec![
        function("pg_get_function_result", oid(), DataType::Utf8),
        function("pg_get_function_arguments", oid(), DataType::Utf8),
        function(
            "obj_description",
            Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Int32]),
                    TypeSignature::Exact(vec![DataType::Int64]),
                    TypeSignature::Exact(vec![DataType::Int32, DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Int64, DataType::Utf8]),
                ],
                Volatility::Stable,
            ),
            DataType::Utf8,
        ),
        function(
            "col_description",
            Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Int32, DataType::Int32]),
                    TypeSignature::Exact(vec![DataType::Int64, DataType::Int64]),
                ],
                Volatility::Stable,
            ),
            DataType::Utf8,
        ),
        function(
            "pg_size_pretty",
            Signature::exact(vec![DataType::Int64], Volatility::Immutable),
            DataType::Utf8,
        ),
        function("pg_table_size", oid(), DataType::Int64),
        function("pg_indexes_size", oid(), DataType::Int64),
        function(
            "pg_database_size",
            Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Int32]),
                    TypeSignature::Exact(vec![DataType::Int64]),
                ],
                Volatility::Stable,
            ),
            DataType::Int64,
        ),
        function(
            "shobj_description",
            Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Int32, DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Int64, DataType::Utf8]),
                ],
                Volatility::Stable,
            ),
            DataType::Utf8,
        ),
        function(
            "pg_has_role",
            Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8, DataType::Utf8]),
                ],
                Volatility::Stable,
            ),
            DataType::Boolean,
        ),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Describe {
    name: &'static str,
    signature: Signature,
    returns: DataType,
}

impl ScalarUDFImpl for Describe {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let args = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match self.name {
            "pg_size_pretty" => {
                let bytes = args[0].as_primitive::<Int64Type>();
                Arc::new(
                    bytes
                        .iter()
                        .map(|b| b.map(size_pretty))
                        .collect::<StringArray>(),
                )
            }
            "pg_table_size" | "pg_indexes_size" | "pg_database_size" => {
                Arc::new(Int64Array::new_null(rows))
            }
            "shobj_description" => Arc::new(StringArray::new_null(rows)),
            "pg_has_role" => Arc::new(BooleanArray::from(vec![false; rows])),
            _ => {
                let catalog = static_catalog()?;
                let first = integers(&args[0]);
                let text: StringArray = match self.name {
                    "pg_get_function_result" | "pg_get_function_arguments" => first
                        .iter()
                        .map(|oid| {
                            let function = catalog.functions.get(&(*oid)?)?;
                            Some(if self.name == "pg_get_function_result" {
                                function.result.clone()
                            } else {
                                function.arguments.clone()
                            })
                        })
                        .collect(),
                    "col_description" => {
                        let columns = integers(&args[1]);
                        first
                            .iter()
                            .zip(&columns)
                            .map(|(table, column)| {
                                catalog.description(
                                    (*table)?,
                                    Some(PG_CLASS),
                                    i32::try_from((*column)?).ok()?,
                                )
                            })
                            .collect()
                    }
                    _ => {
                        // obj_description(oid [, catalog name]); an unknown or NULL catalog
                        // name describes nothing.
                        let names = args.get(1).map(|names| names.as_string::<i32>());
                        (0..rows)
                            .map(|row| {
                                let class = match names {
                                    Some(names) if names.is_null(row) => return None,
                                    Some(names) => Some(catalog_oid(names.value(row))?),
                                    None => None,
                                };
                                catalog.description(first[row]?, class, 0)
                            })
                            .collect()
                    }
                };
                Arc::new(text)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// An OID or number argument as i64s (Int32 and Int64 both arrive).
fn integers(array: &ArrayRef) -> Vec<Option<i64>> {
    match array.data_type() {
        DataType::Int32 => array
            .as_primitive::<Int32Type>()
            .iter()
            .map(|v| v.map(i64::from))
            .collect(),
        _ => array.as_primitive::<Int64Type>().iter().collect(),
    }
}

/// PostgreSQL's rendering of a byte count: bytes below 10 kB, then the largest unit in
/// which the number of half units stays below 20,479, rounded half away from zero.
fn size_pretty(bytes: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    // One extra bit of precision for rounding: halves of the unit.
    let mut halves = bytes / 512;
    for unit in ["kB", "MB", "GB", "TB"] {
        if halves.abs() < 2 * LIMIT - 1 {
            return format!("{} {unit}", half_rounded(halves));
        }
        halves /= 1024;
    }
    format!("{} PB", half_rounded(halves))
}

fn half_rounded(halves: i64) -> i64 {
    (halves + if halves < 0 { -1 } else { 1 }) / 2
}

/// pg_class's OID in every PostgreSQL cluster (col_description's table catalog).
const PG_CLASS: i32 = 1259;

/// The OIDs PostgreSQL gives its catalogs (fixed in every cluster), for `obj_description`'s
/// second argument.
fn catalog_oid(name: &str) -> Option<i32> {
    let name = name.strip_prefix("pg_catalog.").unwrap_or(name);
    Some(match name {
        "pg_type" => 1247,
        "pg_proc" => 1255,
        "pg_class" => PG_CLASS,
        "pg_namespace" => 2615,
        "pg_am" => 2601,
        "pg_constraint" => 2606,
        "pg_operator" => 2617,
        "pg_opclass" => 2616,
        "pg_opfamily" => 2753,
        "pg_collation" => 3456,
        "pg_conversion" => 2607,
        "pg_cast" => 2605,
        "pg_language" => 2612,
        "pg_extension" => 3079,
        "pg_trigger" => 2620,
        "pg_rewrite" => 2618,
        "pg_ts_config" => 3602,
        "pg_ts_dict" => 3600,
        "pg_ts_parser" => 3601,
        "pg_ts_template" => 3764,
        "pg_event_trigger" => 3466,
        "pg_foreign_data_wrapper" => 2328,
        "pg_foreign_server" => 1417,
        "pg_policy" => 3256,
        "pg_statistic_ext" => 3381,
        _ => return None,
    })
}

struct FunctionText {
    result: String,
    arguments: String,
}

/// What the functions read, built once per process from the library's shipped rows.
struct StaticCatalog {
    functions: HashMap<i64, FunctionText>,
    /// (object, catalog, sub-object) to comment.
    descriptions: HashMap<(i64, i32, i32), String>,
}

impl StaticCatalog {
    fn description(&self, object: i64, catalog: Option<i32>, sub: i32) -> Option<String> {
        match catalog {
            Some(catalog) => self.descriptions.get(&(object, catalog, sub)).cloned(),
            None => self
                .descriptions
                .iter()
                .find(|((o, _, s), _)| *o == object && *s == sub)
                .map(|(_, text)| text.clone()),
        }
    }
}

fn static_catalog() -> Result<&'static StaticCatalog> {
    static CATALOG: OnceLock<std::result::Result<StaticCatalog, String>> = OnceLock::new();
    match CATALOG.get_or_init(|| build_static_catalog().map_err(|e| e.to_string())) {
        Ok(catalog) => Ok(catalog),
        Err(e) => exec_err!("PostgreSQL's catalog rows are not available: {e}"),
    }
}

fn build_static_catalog() -> Result<StaticCatalog> {
    let tables = PgCatalogStaticTables::try_new()?;
    let type_names = type_names(tables.pg_type.data())?;
    let type_name = |oid: i64| {
        type_names
            .get(&oid)
            .cloned()
            .unwrap_or_else(|| oid.to_string())
    };

    let mut functions = HashMap::new();
    for batch in tables.pg_proc.data() {
        let oids = integers(column(batch, "oid")?);
        let returns = integers(column(batch, "prorettype")?);
        let sets = column(batch, "proretset")?.as_boolean().clone();
        let in_types = column(batch, "proargtypes")?.as_string::<i32>().clone();
        let all_types = column(batch, "proallargtypes")?.as_string::<i32>().clone();
        let names = column(batch, "proargnames")?.as_string::<i32>().clone();
        let modes = column(batch, "proargmodes")?.as_string::<i32>().clone();
        for row in 0..batch.num_rows() {
            let Some(oid) = oids[row] else { continue };
            fn text(array: &StringArray, row: usize) -> Option<&str> {
                (!array.is_null(row)).then(|| array.value(row))
            }
            // proallargtypes lists every argument (OUT ones too) when there are any;
            // otherwise proargtypes lists the inputs.
            let types: Vec<i64> = match text(&all_types, row) {
                Some(all) => list_items(all)
                    .iter()
                    .filter_map(|t| t.parse().ok())
                    .collect(),
                None => text(&in_types, row)
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|t| t.parse().ok())
                    .collect(),
            };
            let names = text(&names, row).map(list_items).unwrap_or_default();
            let modes = text(&modes, row).map(list_items).unwrap_or_default();
            let argument = |i: usize| {
                let name = names.get(i).map(String::as_str).unwrap_or_default();
                let t = type_name(types[i]);
                if name.is_empty() {
                    t
                } else {
                    format!("{name} {t}")
                }
            };
            let mode = |i: usize| modes.get(i).map(String::as_str).unwrap_or("i");
            let table: Vec<String> = (0..types.len())
                .filter(|&i| mode(i) == "t")
                .map(argument)
                .collect();
            let arguments: Vec<String> = (0..types.len())
                .filter_map(|i| {
                    let prefix = match mode(i) {
                        "i" => "",
                        "o" => "OUT ",
                        "b" => "INOUT ",
                        "v" => "VARIADIC ",
                        _ => return None,
                    };
                    Some(format!("{prefix}{}", argument(i)))
                })
                .collect();
            let result = if !table.is_empty() {
                format!("TABLE({})", table.join(", "))
            } else {
                let returned = returns[row].map(type_name).unwrap_or_default();
                if !sets.is_null(row) && sets.value(row) {
                    format!("SETOF {returned}")
                } else {
                    returned
                }
            };
            functions.insert(
                oid,
                FunctionText {
                    result,
                    arguments: arguments.join(", "),
                },
            );
        }
    }

    let mut descriptions = HashMap::new();
    for batch in tables.pg_description.data() {
        let objects = integers(column(batch, "objoid")?);
        let classes = integers(column(batch, "classoid")?);
        let subs = integers(column(batch, "objsubid")?);
        let texts = column(batch, "description")?.as_string::<i32>();
        for row in 0..batch.num_rows() {
            if let (Some(object), Some(class), Some(sub), false) =
                (objects[row], classes[row], subs[row], texts.is_null(row))
            {
                descriptions.insert(
                    (object, class as i32, sub as i32),
                    texts.value(row).to_string(),
                );
            }
        }
    }
    Ok(StaticCatalog {
        functions,
        descriptions,
    })
}

/// Each type's name as `format_type(oid, NULL)` gives it (the library's function: `integer`,
/// `character varying`), or its `typname` where that function does not know the type.
fn type_names(batches: &[RecordBatch]) -> Result<HashMap<i64, String>> {
    let format_type = create_format_type_udf();
    let mut names = HashMap::new();
    for batch in batches {
        let oids = column(batch, "oid")?;
        let typnames = column(batch, "typname")?.as_string::<i32>();
        let oids32: Int32Array = integers(oids)
            .into_iter()
            .map(|o| o.and_then(|o| i32::try_from(o).ok()))
            .collect();
        let rows = oids32.len();
        let formatted = format_type.invoke_with_args(ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Array(Arc::new(oids32.clone())),
                ColumnarValue::Array(Arc::new(Int32Array::from(vec![-1; rows]))),
            ],
            arg_fields: vec![
                Arc::new(Field::new("oid", DataType::Int32, true)),
                Arc::new(Field::new("typmod", DataType::Int32, true)),
            ],
            number_rows: rows,
            return_field: Arc::new(Field::new("format_type", DataType::Utf8, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })?;
        let formatted = formatted.into_array(rows)?;
        let formatted = formatted.as_string::<i32>();
        for row in 0..rows {
            if oids32.is_null(row) {
                continue;
            }
            // The library writes `oid(N)` for a type it has no name for.
            let name = if formatted.is_null(row) || formatted.value(row).starts_with("oid(") {
                typnames.value(row)
            } else {
                formatted.value(row)
            };
            names.insert(i64::from(oids32.value(row)), name.to_string());
        }
    }
    Ok(names)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    match batch.schema().index_of(name) {
        Ok(i) => Ok(batch.column(i)),
        Err(_) => exec_err!("PostgreSQL's catalog rows have no column {name}"),
    }
}

/// The items of a list as the shipped rows print arrays: `['a', 'b']` or `[25, 18]`.
fn list_items(text: &str) -> Vec<String> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    if inner.trim().is_empty() {
        return Vec::new();
    }
    inner
        .split(',')
        .map(|item| item.trim().trim_matches('\'').to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{list_items, size_pretty, static_catalog};

    #[test]
    fn sizes_read_as_postgres_prints_them() {
        // Values as PostgreSQL 15's pg_size_pretty prints them.
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10239), "10239 bytes");
        assert_eq!(size_pretty(10240), "10 kB");
        assert_eq!(size_pretty(20971519), "20 MB");
        assert_eq!(size_pretty(20971520), "20 MB");
        assert_eq!(size_pretty(-10240), "-10 kB");
        assert_eq!(size_pretty(1_000_000_000_000), "931 GB");
        assert_eq!(size_pretty(30 * (1 << 50)), "30 PB");
    }

    #[test]
    fn functions_and_types_are_described_from_the_shipped_rows() {
        let catalog = static_catalog().unwrap();
        // substr(text, integer, integer) is OID 877 in every PostgreSQL cluster.
        let substr = &catalog.functions[&877];
        assert_eq!(substr.result, "text");
        assert_eq!(substr.arguments, "text, integer, integer");
        // int4's comment.
        assert_eq!(
            catalog.description(23, Some(1247), 0).as_deref(),
            Some("-2 billion to 2 billion integer, 4-byte storage")
        );
        // pg_get_keywords() returns SETOF record (a type the library does not name).
        assert_eq!(catalog.functions[&1686].result, "SETOF record");
        assert_eq!(
            catalog.functions[&1686].arguments,
            "OUT word text, OUT catcode \"char\", OUT barelabel boolean, OUT catdesc text, \
             OUT baredesc text"
        );
        assert_eq!(list_items("['a', 'b']"), vec!["a", "b"]);
        assert!(list_items("[]").is_empty());
    }
}
