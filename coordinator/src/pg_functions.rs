//! PostgreSQL session functions whose answers depend on Quarry rather than on
//! datafusion-pg-catalog's fixed values: `version()` reads like a PostgreSQL 15 server (drivers
//! such as SQLAlchemy parse it), and `current_schema()` / `current_schemas(bool)` name the
//! session's current database (`USE db`), which is Quarry's search path.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, ListArray, StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{ScalarValue, exec_err, not_impl_err, plan_err};
use datafusion::error::Result;

use crate::session::{Settings, setting};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

/// The `server_version` Quarry reports: a PostgreSQL 15 version, then Quarry's own.
pub const SERVER_VERSION: &str = concat!("15.0 (Quarry ", env!("CARGO_PKG_VERSION"), ")");

/// What `version()` returns, shaped like PostgreSQL's so drivers can parse the version.
const VERSION_TEXT: &str = concat!(
    "PostgreSQL 15.0 (Quarry ",
    env!("CARGO_PKG_VERSION"),
    ") on x86_64-pc-linux-gnu, a federated SQL engine on Apache DataFusion"
);

/// The functions to register in every session, replacing same-named ones.
pub fn session_functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(SessionFunction::new("version", vec![], DataType::Utf8)),
        ScalarUDF::new_from_impl(SessionFunction::new(
            "current_schema",
            vec![],
            DataType::Utf8,
        )),
        ScalarUDF::new_from_impl(SessionFunction::new(
            "current_schemas",
            vec![DataType::Boolean],
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        )),
        expand_array(),
        ScalarUDF::new_from_impl(JsonBuildObject {
            signature: Signature::variadic_any(Volatility::Immutable),
        }),
        ScalarUDF::new_from_impl(IndexDefinition {
            signature: Signature::variadic_any(Volatility::Stable),
        }),
    ]
    .into_iter()
    .chain(crate::pg_describe::describe_functions())
    .chain(
        [
            "pg_collation_is_visible",
            "pg_function_is_visible",
            "pg_type_is_visible",
        ]
        .map(|name| {
            ScalarUDF::new_from_impl(IsVisible {
                name,
                signature: Signature::any(1, Volatility::Stable),
            })
        }),
    )
    .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
}

impl SessionFunction {
    fn new(name: &'static str, args: Vec<DataType>, returns: DataType) -> Self {
        Self {
            name,
            // Stable: one value per statement, folded while planning on the coordinator.
            signature: Signature::exact(args, Volatility::Stable),
            returns,
        }
    }
}

impl ScalarUDFImpl for SessionFunction {
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
        let database = args.config_options.catalog.default_schema.clone();
        let value = match self.name {
            "version" => ScalarValue::Utf8(Some(VERSION_TEXT.to_string())),
            "current_schema" => ScalarValue::Utf8(Some(database)),
            _ => {
                // current_schemas(include_implicit): the search path, then pg_catalog.
                let implicit = matches!(
                    args.args.first(),
                    Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
                );
                let mut names = vec![database];
                if implicit {
                    names.insert(0, "pg_catalog".to_string());
                }
                let names_len = names.len();
                let values = StringArray::from(names);
                let list = ListArray::new(
                    Arc::new(Field::new("item", DataType::Utf8, true)),
                    OffsetBuffer::from_lengths([names_len]),
                    Arc::new(values),
                    None,
                );
                ScalarValue::List(Arc::new(list))
            }
        };
        Ok(ColumnarValue::Scalar(value))
    }
}

/// `information_schema._pg_expandarray(array)`: in PostgreSQL a set-returning function giving
/// one `(x, n)` row per element. pgjdbc's `getPrimaryKeys` calls it on `pg_index.indkey`
/// joined to the tables' columns; Quarry's tables have no indexes, so that join is empty and
/// the function is planned but never called on a row. It answers NULL for a NULL or empty
/// array and refuses any other input rather than return one row where PostgreSQL gives many.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

pub(crate) fn expand_array() -> ScalarUDF {
    ScalarUDF::new_from_impl(ExpandArray {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        "_pg_expandarray"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(
            vec![
                Field::new("x", DataType::Int16, true),
                Field::new("n", DataType::Int32, true),
            ]
            .into(),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = ColumnarValue::values_to_arrays(&args.args)?;
        let input = &values[0];
        for row in 0..input.len() {
            if input.is_null(row) {
                continue;
            }
            let empty = match input.data_type() {
                DataType::Utf8 => input.as_string::<i32>().value(row).trim().is_empty(),
                DataType::List(_) => input.as_list::<i32>().value(row).is_empty(),
                _ => false,
            };
            if !empty {
                return not_impl_err!(
                    "_pg_expandarray over a non-empty array (a set-returning function) is not supported"
                );
            }
        }
        let DataType::Struct(fields) = self.return_type(&[])? else {
            unreachable!("the return type is a struct")
        };
        Ok(ColumnarValue::Array(Arc::new(StructArray::new_null(
            fields,
            input.len(),
        ))))
    }
}

/// `json_build_object(key, value, ...)`: a JSON object of the pairs in order, written as
/// PostgreSQL writes it (`{"a" : 1, "b" : "x"}`); SQLAlchemy's inspector uses it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        if arrays.len() % 2 != 0 {
            return plan_err!(
                "json_build_object: the argument list must have an even number of elements"
            );
        }
        let mut out = StringBuilder::new();
        for row in 0..args.number_rows {
            let mut pairs = Vec::with_capacity(arrays.len() / 2);
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], row)?;
                if key.is_null() {
                    return exec_err!("json_build_object: a key cannot be null");
                }
                let key = match key {
                    ScalarValue::Utf8(Some(k))
                    | ScalarValue::LargeUtf8(Some(k))
                    | ScalarValue::Utf8View(Some(k)) => k,
                    other => other.to_string(),
                };
                let value = json_value(ScalarValue::try_from_array(&pair[1], row)?);
                pairs.push(format!("{} : {value}", serde_json::Value::String(key)));
            }
            out.append_value(format!("{{{}}}", pairs.join(", ")));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn json_value(value: ScalarValue) -> serde_json::Value {
    use serde_json::Value;
    if value.is_null() {
        return Value::Null;
    }
    match value {
        ScalarValue::Boolean(Some(b)) => Value::Bool(b),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Value::String(s),
        ScalarValue::Float32(Some(f)) => {
            serde_json::Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number)
        }
        ScalarValue::Float64(Some(f)) => {
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        ref v if v.data_type().is_integer() => v
            .to_string()
            .parse::<serde_json::Number>()
            .map_or_else(|_| Value::String(v.to_string()), Value::Number),
        other => Value::String(other.to_string()),
    }
}

/// `pg_collation_is_visible(oid)`, `pg_function_is_visible(oid)`, `pg_type_is_visible(oid)`:
/// whether the object is on the search path. The collations, functions and types Quarry
/// lists are all in pg_catalog, which is always on the path.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IsVisible {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for IsVisible {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let oids = ColumnarValue::values_to_arrays(&args.args)?;
        let visible: BooleanArray = (0..args.number_rows)
            .map(|row| (!oids[0].is_null(row)).then_some(true))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(visible)))
    }
}

/// `pg_get_indexdef(index [, column, pretty])`: the definition of an index. Quarry's tables
/// have no indexes, and PostgreSQL answers NULL for an OID that is not an index's.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IndexDefinition {
    signature: Signature,
}

impl ScalarUDFImpl for IndexDefinition {
    fn name(&self) -> &str {
        "pg_get_indexdef"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))
    }
}

/// `current_setting(name [, missing_ok])`: a client setting of the session (as `SHOW name`
/// answers it), else a DataFusion option by its full name.
pub(crate) fn current_setting(settings: Settings) -> ScalarUDF {
    ScalarUDF::new_from_impl(CurrentSetting {
        settings: SettingsHandle(settings),
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
            ],
            Volatility::Stable,
        ),
    })
}

/// The session's settings; every session's function is its own, so they compare by identity.
#[derive(Debug)]
struct SettingsHandle(Settings);

impl PartialEq for SettingsHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SettingsHandle {}

impl std::hash::Hash for SettingsHandle {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentSetting {
    settings: SettingsHandle,
    signature: Signature,
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let names = arrays[0].as_string::<i32>();
        let missing_ok = arrays.get(1).map(|a| a.as_boolean());
        let database = &args.config_options.catalog.default_schema;
        let options = args.config_options.entries();
        let mut out = StringBuilder::new();
        for row in 0..args.number_rows {
            if names.is_null(row) {
                out.append_null();
                continue;
            }
            let name = names.value(row).to_ascii_lowercase();
            let value = setting(&self.settings.0, &name, database).or_else(|| {
                options
                    .iter()
                    .find(|entry| entry.key == name)
                    .map(|entry| entry.value.clone().unwrap_or_default())
            });
            match value {
                Some(value) => out.append_value(value),
                None if missing_ok.is_some_and(|m| !m.is_null(row) && m.value(row)) => {
                    out.append_null()
                }
                None => return exec_err!("unrecognized configuration parameter \"{name}\""),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
