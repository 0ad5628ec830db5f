//! Quarry's own rewrites of the SQL PostgreSQL clients send, each into SQL that DataFusion
//! plans and that means the same (docs/pg-compat.md lists them and who sends what).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, DataType as SqlDataType, Expr as SqlExpr, Function,
    FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident, Interval, Select,
    SelectItem, SetExpr, Statement, Subscript, TableFactor, TableWithJoins, Value as SqlValue,
    visit_expressions, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser as SqlParser;

use crate::pg_overlay::EMPTY_TABLES;

/// Quarry's own rewrites of what clients send, applied before datafusion-pg-catalog's (which
/// would otherwise turn `'f'::regproc` into a lookup that cannot be compared with `typinput`).
pub(crate) fn with_quarry_rewrites(sql: &str) -> String {
    let Ok(mut statements) = SqlParser::parse_sql(&PostgreSqlDialect {}, sql) else {
        return sql.to_string();
    };
    let [statement] = statements.as_mut_slice() else {
        return sql.to_string();
    };
    let catalog_query = sql.to_ascii_lowercase().contains("pg_catalog.");
    let mut changed = subqueries_over_empty_tables(statement);
    // Names first, so a rewritten function keeps the name it was called by.
    changed |= name_function_columns(statement);
    let _ = visit_expressions_mut(statement, |expr| {
        changed |= dot_access_to_subscript(expr);
        changed |= subquery_of_pg_sequence(expr);
        // Only where subqueries look rows up by OID (see the function).
        if catalog_query {
            changed |= aggregate_scalar_subquery(expr);
        }
        changed |= array_subquery(expr);
        changed |= hoist_outer_conditions(expr);
        changed |= regproc_literal_as_text(expr);
        changed |= no_serial_sequence(expr);
        changed |= subscripts_as_series(expr);
        changed |= regtype_lookup(expr);
        changed |= interval_times(expr);
        changed |= to_char_template(expr);
        ControlFlow::<()>::Continue(())
    });
    if changed {
        statement.to_string()
    } else {
        sql.to_string()
    }
}

/// A scalar subquery reading only `pg_sequence` (SQLAlchemy's identity options, correlated
/// in a way DataFusion cannot plan): Quarry has no sequences, pg_sequence is empty, so the
/// subquery is NULL. Aggregates over it are left alone (`count` of nothing is 0).
fn subquery_of_pg_sequence(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Subquery(query) = expr else {
        return false;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let reads_sequences = catalog_table_read(select).as_deref() == Some("pg_sequence");
    let aggregates = select.projection.iter().any(|item| {
        matches!(item,
            SelectItem::UnnamedExpr(SqlExpr::Function(f)) | SelectItem::ExprWithAlias { expr: SqlExpr::Function(f), .. }
                if AGGREGATES.contains(&f.name.to_string().to_ascii_lowercase().as_str()))
    });
    if !reads_sequences || aggregates || select.projection.len() != 1 {
        return false;
    }
    *expr = SqlExpr::value(SqlValue::Null);
    true
}

/// `(SELECT e FROM t WHERE outer.c AND t.k = outer.k)`, a scalar subquery with a condition
/// on the outer row only (SQLAlchemy's column defaults: `WHERE pg_attribute.atthasdef AND
/// ...`), which DataFusion cannot decorrelate, as `CASE WHEN outer.c THEN (SELECT e FROM t
/// WHERE t.k = outer.k) END`: the same value (NULL when the condition is not true).
/// A condition counts as the outer row's when every column in it is qualified by a name that
/// is not one of the subquery's tables.
fn hoist_outer_conditions(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Subquery(query) = expr else {
        return false;
    };
    // Worked on a copy: `expr` changes only when the whole rewrite succeeds.
    let mut query = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return false;
    };
    let Some(selection) = select.selection.take() else {
        return false;
    };
    let inner = relation_names(&select.from);
    let (outer, kept): (Vec<SqlExpr>, Vec<SqlExpr>) = conjuncts(selection)
        .into_iter()
        .partition(|c| only_outer_columns(c, &inner));
    select.selection = kept.into_iter().reduce(|a, b| SqlExpr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    });
    let Some(condition) = outer.into_iter().reduce(|a, b| SqlExpr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    }) else {
        return false;
    };
    let case = format!("CASE WHEN {condition} THEN ({query}) END");
    replace_with(expr, &case)
}

/// The names a query's FROM tables go by: aliases, full names and unqualified names.
fn relation_names(from: &[TableWithJoins]) -> Vec<String> {
    let mut names = Vec::new();
    let relations = from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for relation in relations {
        if let TableFactor::Table { name, alias, .. } = relation {
            match alias {
                Some(alias) => names.push(alias.name.value.to_ascii_lowercase()),
                None => {
                    names.push(name.to_string().to_ascii_lowercase());
                    if let Some(last) = name.0.last() {
                        names.push(last.to_string().to_ascii_lowercase());
                    }
                }
            }
        }
    }
    names
}

/// `a AND b AND c` as `[a, b, c]`.
fn conjuncts(expr: SqlExpr) -> Vec<SqlExpr> {
    match expr {
        SqlExpr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut all = conjuncts(*left);
            all.extend(conjuncts(*right));
            all
        }
        SqlExpr::Nested(inner)
            if matches!(
                inner.as_ref(),
                SqlExpr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner)
        }
        other => vec![other],
    }
}

/// Whether every column `expr` uses is qualified by a name other than `inner`'s, and it uses
/// at least one (and no subquery).
fn only_outer_columns(expr: &SqlExpr, inner: &[String]) -> bool {
    let mut outer_columns = 0;
    let verdict = visit_expressions(expr, |e| match e {
        SqlExpr::Identifier(_)
        | SqlExpr::Subquery(_)
        | SqlExpr::Exists { .. }
        | SqlExpr::InSubquery { .. } => ControlFlow::Break(()),
        SqlExpr::CompoundIdentifier(parts) => {
            let qualifier = parts[..parts.len() - 1]
                .iter()
                .map(|p| p.value.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(".");
            if inner.contains(&qualifier) {
                ControlFlow::Break(())
            } else {
                outer_columns += 1;
                ControlFlow::Continue(())
            }
        }
        _ => ControlFlow::Continue(()),
    });
    verdict.is_continue() && outer_columns > 0
}

/// A correlated scalar subquery without aggregation, `(SELECT c.relkind = 'c' FROM
/// pg_catalog.pg_class c WHERE c.oid = t.typrelid)` (pgjdbc's `getTypeInfo`), which
/// DataFusion refuses ("must be aggregated"), as `(SELECT max(...) ...)`. Only in statements
/// over pg_catalog, where such subqueries look a row up by OID: at most one row matches, so
/// `max` of it is the row's value. (PostgreSQL would fail on two rows; this picks the larger.)
fn aggregate_scalar_subquery(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Subquery(query) = expr else {
        return false;
    };
    if query.limit_clause.is_some() || query.order_by.is_some() || query.fetch.is_some() {
        return false;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return false;
    };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(keys, _) if keys.is_empty());
    if select.projection.len() != 1
        || select.selection.is_none()
        || select.distinct.is_some()
        || select.having.is_some()
        || grouped
    {
        return false;
    }
    let (SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }) =
        &mut select.projection[0]
    else {
        return false;
    };
    // An aggregate already returns one row.
    if let SqlExpr::Function(f) = value
        && AGGREGATES.contains(&f.name.to_string().to_ascii_lowercase().as_str())
    {
        return false;
    }
    let wrapped = format!("max({value})");
    replace_with(value, &wrapped)
}

/// `ARRAY(SELECT e FROM ... [WHERE ...] [ORDER BY ...])`, an array of a subquery's rows
/// (psql's `\du`, `\d+`), which DataFusion cannot plan, as the scalar subquery
/// `coalesce((SELECT array_agg(e [ORDER BY ...]) FROM ...), make_array())` (the empty
/// array for a subquery without rows, as PostgreSQL gives). One special case:
/// `ARRAY(SELECT ... FROM unnest(x.reloptions) ...)` (psql's `\d+`, over a toast table's
/// options) is NULL, since Quarry's `reloptions` are always NULL (and DataFusion cannot
/// unnest an outer column in a subquery's FROM).
fn array_subquery(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Function(f) = expr else {
        return false;
    };
    let FunctionArguments::Subquery(query) = &f.args else {
        return false;
    };
    if !f.name.to_string().eq_ignore_ascii_case("array")
        || query.with.is_some()
        || query.limit_clause.is_some()
        || query.fetch.is_some()
    {
        return false;
    }
    let mut query = query.clone();
    let order = query.order_by.take();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return false;
    };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(keys, _) if keys.is_empty());
    if select.projection.len() != 1
        || select.distinct.is_some()
        || select.having.is_some()
        || grouped
    {
        return false;
    }
    if let [from] = select.from.as_slice()
        && let TableFactor::Table {
            name,
            args: Some(args),
            ..
        } = &from.relation
        && name.to_string().to_ascii_lowercase().ends_with("unnest")
        && args.args.iter().any(|arg| {
            arg.to_string()
                .to_ascii_lowercase()
                .ends_with(".reloptions")
        })
    {
        *expr = SqlExpr::value(SqlValue::Null);
        return true;
    }
    let (SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }) =
        &mut select.projection[0]
    else {
        return false;
    };
    let order = order.map(|o| format!(" {o}")).unwrap_or_default();
    if !replace_with(value, &format!("array_agg({value}{order})")) {
        return false;
    }
    // No rows: array_agg is NULL, PostgreSQL's ARRAY() an empty array.
    let subquery = SqlExpr::Subquery(query);
    replace_with(expr, &format!("coalesce({subquery}, make_array())"))
}

/// Aggregate functions PostgreSQL clients use in catalog subqueries.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "first_value",
];

/// `'pg_catalog.array_in'::regproc` (pgjdbc's type cache compares `typinput` with it): the
/// function's name as text, which is how pg_catalog's `regproc` columns hold it here.
fn regproc_literal_as_text(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Cast {
        expr: inner,
        data_type,
        ..
    } = expr
    else {
        return false;
    };
    if !data_type.to_string().eq_ignore_ascii_case("regproc") {
        return false;
    }
    let SqlExpr::Value(value) = inner.as_ref() else {
        return false;
    };
    let SqlValue::SingleQuotedString(name) = &value.value else {
        return false;
    };
    let name = name.strip_prefix("pg_catalog.").unwrap_or(name).to_string();
    *expr = SqlExpr::value(SqlValue::SingleQuotedString(name));
    true
}

/// `pg_get_serial_sequence(table, column)`: the sequence behind a serial column. Quarry has
/// no sequences, so it is NULL, PostgreSQL's answer for a column that is not serial. Written
/// as the NULL itself so that its arguments (SQLAlchemy's inspector passes
/// `attrelid::regclass::text`, a lookup DataFusion cannot run inside a correlated subquery)
/// are not planned.
fn no_serial_sequence(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Function(f) = expr else {
        return false;
    };
    if !is_function(f, "pg_get_serial_sequence") {
        return false;
    }
    *expr = SqlExpr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(SqlExpr::value(SqlValue::Null)),
        data_type: SqlDataType::Text,
        array: false,
        format: None,
    };
    true
}

/// `generate_subscripts(a, 1)`, the subscripts of a one-dimensional array as rows (SQLAlchemy
/// zips it with `unnest(a)` to number index keys), as `unnest(generate_series(1,
/// array_length(a, 1)))`: DataFusion has no generate_subscripts, and zips unnests alike.
fn subscripts_as_series(expr: &mut SqlExpr) -> bool {
    let args = call_args(expr, "generate_subscripts");
    let Some([array, dim]) = args.as_deref() else {
        return false;
    };
    if dim.to_string() != "1" {
        return false;
    }
    let series = format!("unnest(generate_series(1, array_length({array}, 1)))");
    replace_with(expr, &series)
}

/// `to_regtype(name)` (psycopg's `TypeInfo.fetch`): the OID of the type called `name`, or
/// NULL, as a lookup in pg_type by name; SQL's spellings of the built-in types are mapped to
/// their pg_type names, and a `pg_catalog.` prefix is dropped.
fn regtype_lookup(expr: &mut SqlExpr) -> bool {
    let args = call_args(expr, "to_regtype");
    let Some([type_name]) = args.as_deref() else {
        return false;
    };
    let aliases = [
        ("integer", "int4"),
        ("int", "int4"),
        ("smallint", "int2"),
        ("bigint", "int8"),
        ("real", "float4"),
        ("double precision", "float8"),
        ("boolean", "bool"),
        ("decimal", "numeric"),
        ("character varying", "varchar"),
        ("character", "bpchar"),
        ("timestamp without time zone", "timestamp"),
        ("timestamp with time zone", "timestamptz"),
        ("time without time zone", "time"),
        ("time with time zone", "timetz"),
    ]
    .iter()
    .map(|(alias, name)| format!("WHEN '{alias}' THEN '{name}'"))
    .collect::<Vec<_>>()
    .join(" ");
    let lookup = format!(
        "(SELECT max(t.oid) FROM pg_catalog.pg_type t WHERE t.typname = \
         CASE lower({type_name}) {aliases} \
         ELSE regexp_replace(lower({type_name}), '^pg_catalog\\.', '') END)"
    );
    replace_with(expr, &lookup)
}

/// `(expr).field`, PostgreSQL's field access on a composite value (pgjdbc's
/// `(information_schema._pg_expandarray(i.indkey)).n`), as `(expr)['field']`, the spelling
/// DataFusion plans.
fn dot_access_to_subscript(expr: &mut SqlExpr) -> bool {
    let SqlExpr::CompoundFieldAccess { root, access_chain } = expr else {
        return false;
    };
    if !matches!(root.as_ref(), SqlExpr::Nested(_)) {
        return false;
    }
    let mut changed = false;
    for access in access_chain.iter_mut() {
        if let AccessExpr::Dot(SqlExpr::Identifier(field)) = access {
            let name = SqlValue::SingleQuotedString(field.value.clone());
            *access = AccessExpr::Subscript(Subscript::Index {
                index: SqlExpr::value(name),
            });
            changed = true;
        }
    }
    changed
}

/// The one table `select` reads, without joins, lowercased and without a `pg_catalog.`
/// prefix.
fn catalog_table_read(select: &Select) -> Option<String> {
    let [from] = select.from.as_slice() else {
        return None;
    };
    let TableFactor::Table { name, .. } = &from.relation else {
        return None;
    };
    if !from.joins.is_empty() {
        return None;
    }
    let name = name.to_string().to_ascii_lowercase();
    Some(match name.strip_prefix("pg_catalog.") {
        Some(bare) => bare.to_string(),
        None => name,
    })
}

/// `SELECT ..., (correlated subquery), ... FROM pg_policy ...` (psql's `\d+` lists a table's
/// row-level security policies so): the table has no rows in Quarry (`EMPTY_TABLES`), so
/// the statement returns none whatever its columns compute, and columns with subqueries
/// DataFusion cannot plan (`oid = ANY (outer array)`) become NULL, keeping their names.
fn subqueries_over_empty_tables(statement: &mut Statement) -> bool {
    let Statement::Query(query) = statement else {
        return false;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return false;
    };
    match catalog_table_read(select) {
        Some(name) if EMPTY_TABLES.contains(&name.as_str()) => {}
        _ => return false,
    }
    let mut changed = false;
    for item in &mut select.projection {
        let (SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) = item else {
            continue;
        };
        let has_subquery = visit_expressions(&*expr, |e| match e {
            SqlExpr::Subquery(_) | SqlExpr::InSubquery { .. } | SqlExpr::Exists { .. } => {
                ControlFlow::Break(())
            }
            SqlExpr::Function(f) if matches!(f.args, FunctionArguments::Subquery(_)) => {
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        })
        .is_break();
        if has_subquery {
            *item = SelectItem::ExprWithAlias {
                alias: Ident::with_quote('"', item_name(item)),
                expr: SqlExpr::value(SqlValue::Null),
            };
            changed = true;
        }
    }
    changed
}

/// The name PostgreSQL gives a SELECT item: its alias, else a column's or function's name.
fn item_name(item: &SelectItem) -> String {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
        SelectItem::UnnamedExpr(SqlExpr::Function(f)) => f
            .name
            .0
            .last()
            .map_or_else(|| "?column?".to_string(), |part| part.to_string()),
        SelectItem::UnnamedExpr(SqlExpr::Case { .. }) => "case".to_string(),
        _ => "?column?".to_string(),
    }
}

/// Result columns computed by a function call named as PostgreSQL names them, after the
/// function (`count(*)` is column `count`, `pg_catalog.version()` is `version`,
/// `EXTRACT(...)` is `extract`), where DataFusion would name them after the whole
/// expression (`count(*)`). Only the statement's own SELECT list, only names that stay
/// unique in it, and not with `*` in the list (its columns are not known here). Clients of
/// the PostgreSQL protocol see PostgreSQL's names in every case (see `origins.rs`); these
/// names also reach Quarry's shell and the columns of `CREATE TABLE AS`.
fn name_function_columns(statement: &mut Statement) -> bool {
    let Statement::Query(query) = statement else {
        return false;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return false;
    };
    let mut names = Vec::with_capacity(select.projection.len());
    for item in &select.projection {
        names.push(match item {
            SelectItem::UnnamedExpr(SqlExpr::Function(f)) => f
                .name
                .0
                .last()
                .and_then(|part| part.as_ident())
                .map(|ident| ident.value.to_ascii_lowercase()),
            SelectItem::UnnamedExpr(expr) if syntax_function_name(expr).is_some() => {
                syntax_function_name(expr).map(str::to_string)
            }
            SelectItem::UnnamedExpr(SqlExpr::Identifier(ident)) => Some(ident.value.clone()),
            SelectItem::UnnamedExpr(SqlExpr::CompoundIdentifier(parts)) => {
                parts.last().map(|ident| ident.value.clone())
            }
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(_) => None,
            _ => return false,
        });
    }
    let mut changed = false;
    for (item, name) in select.projection.iter_mut().zip(&names) {
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        if !matches!(expr, SqlExpr::Function(_)) && syntax_function_name(expr).is_none() {
            continue;
        }
        let Some(name) = name else {
            continue;
        };
        let unique = names.iter().filter(|n| n.as_ref() == Some(name)).count() == 1;
        if !unique {
            continue;
        }
        let SelectItem::UnnamedExpr(expr) =
            std::mem::replace(item, SelectItem::Wildcard(Default::default()))
        else {
            unreachable!("matched above")
        };
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::new(name.clone()),
        };
        changed = true;
    }
    changed
}

/// PostgreSQL's name for a column computed by a function with SQL's own syntax
/// (`EXTRACT(year FROM d)` is `extract`, `TRIM(s)` is `btrim`), which DataFusion names after
/// the function it plans (`date_part`).
fn syntax_function_name(expr: &SqlExpr) -> Option<&'static str> {
    Some(match expr {
        SqlExpr::Extract { .. } => "extract",
        SqlExpr::Substring { .. } => "substring",
        SqlExpr::Position { .. } => "position",
        SqlExpr::Trim { .. } => "btrim",
        SqlExpr::Overlay { .. } => "overlay",
        SqlExpr::Ceil { .. } => "ceil",
        SqlExpr::Floor { .. } => "floor",
        _ => return None,
    })
}

/// `n * INTERVAL '...'`, in either order, which DataFusion cannot multiply (Tableau's
/// DATEADD writes `d + n * INTERVAL '1 MONTH'`): the interval's text with each amount
/// multiplied by `n`, cast to an interval, as in
/// `CAST(CAST((n) * 1 AS VARCHAR) || ' MONTH' AS INTERVAL)`. A constant `n` folds to one
/// interval, a column's is made row by row, and fractions carry down as in PostgreSQL
/// (`1.5 * INTERVAL '1 month'` is 1 month 15 days).
fn interval_times(expr: &mut SqlExpr) -> bool {
    let SqlExpr::BinaryOp {
        left,
        op: BinaryOperator::Multiply,
        right,
    } = expr
    else {
        return false;
    };
    let (factor, interval) = match (left.as_ref(), right.as_ref()) {
        (_, SqlExpr::Interval(interval)) => (left.as_ref(), interval),
        (SqlExpr::Interval(interval), _) => (right.as_ref(), interval),
        _ => return false,
    };
    let Some(parts) = interval_parts(interval) else {
        return false;
    };
    let text = parts
        .iter()
        .map(|(amount, unit)| format!("CAST(({factor}) * {amount} AS VARCHAR) || ' {unit}'"))
        .collect::<Vec<_>>()
        .join(" || ' ' || ");
    replace_with(expr, &format!("CAST({text} AS INTERVAL)"))
}

/// `to_char(value, 'template')` with a PostgreSQL template (to_char.rs).
fn to_char_template(expr: &mut SqlExpr) -> bool {
    let args = call_args(expr, "to_char");
    let Some([value, SqlExpr::Value(template)]) = args.as_deref() else {
        return false;
    };
    let SqlValue::SingleQuotedString(template) = &template.value else {
        return false;
    };
    let Some(sql) = crate::to_char::to_char_sql(&format!("({value})"), template) else {
        return false;
    };
    replace_with(expr, &format!("({sql})"))
}

/// The amounts and units of an interval written `'n unit [n unit ...]'` or `'n' UNIT`;
/// None for other forms (`'01:30'`, `HOUR TO MINUTE`), left to DataFusion.
fn interval_parts(interval: &Interval) -> Option<Vec<(String, String)>> {
    if interval.last_field.is_some()
        || interval.leading_precision.is_some()
        || interval.fractional_seconds_precision.is_some()
    {
        return None;
    }
    let SqlExpr::Value(value) = interval.value.as_ref() else {
        return None;
    };
    let SqlValue::SingleQuotedString(text) = &value.value else {
        return None;
    };
    let amount = |word: &str| word.parse::<f64>().is_ok().then(|| word.to_string());
    let mut words = text.split_whitespace();
    let mut parts = Vec::new();
    match &interval.leading_field {
        Some(unit) => {
            parts.push((amount(words.next()?)?, unit.to_string()));
            if words.next().is_some() {
                return None;
            }
        }
        None => {
            while let Some(word) = words.next() {
                let unit = words.next()?;
                if !unit.chars().all(|c| c.is_ascii_alphabetic()) {
                    return None;
                }
                parts.push((amount(word)?, unit.to_string()));
            }
        }
    }
    (!parts.is_empty()).then_some(parts)
}

/// Replaces `expr` with the expression `sql`; false (and `expr` unchanged) when `sql` does
/// not parse.
fn replace_with(expr: &mut SqlExpr, sql: &str) -> bool {
    match SqlParser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_expr())
    {
        Ok(parsed) => {
            *expr = parsed;
            true
        }
        Err(_) => false,
    }
}

/// The arguments of `expr` when it calls `name` with positional arguments only.
fn call_args<'a>(expr: &'a SqlExpr, name: &str) -> Option<Vec<&'a SqlExpr>> {
    let SqlExpr::Function(f) = expr else {
        return None;
    };
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if !is_function(f, name) {
        return None;
    }
    list.args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect()
}

/// Whether `f` calls `name`, with or without the `pg_catalog.` prefix.
fn is_function(f: &Function, name: &str) -> bool {
    let called = f.name.to_string().to_ascii_lowercase();
    called == name || called.strip_prefix("pg_catalog.") == Some(name)
}

#[cfg(test)]
mod tests {
    use super::with_quarry_rewrites;

    #[test]
    fn field_access_on_an_expression_becomes_a_subscript() {
        assert_eq!(
            with_quarry_rewrites("SELECT (f(x)).n FROM t"),
            "SELECT (f(x))['n'] FROM t"
        );
        // A plain column is left alone.
        assert_eq!(
            with_quarry_rewrites("SELECT t.n FROM t"),
            "SELECT t.n FROM t"
        );
    }

    #[test]
    fn an_array_of_a_subquery_becomes_an_aggregate() {
        assert_eq!(
            with_quarry_rewrites(
                "SELECT ARRAY(SELECT b.rolname FROM m JOIN b ON m.roleid = b.oid \
                 WHERE m.member = r.oid ORDER BY 1) AS memberof FROM r"
            ),
            "SELECT coalesce((SELECT array_agg(b.rolname ORDER BY 1) FROM m JOIN b ON m.roleid = b.oid \
             WHERE m.member = r.oid), make_array()) AS memberof FROM r"
        );
        assert_eq!(
            with_quarry_rewrites(
                "SELECT c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x) FROM c"
            ),
            "SELECT c.reloptions || NULL FROM c"
        );
        // An ARRAY literal is left alone.
        assert_eq!(
            with_quarry_rewrites("SELECT ARRAY[1, 2]"),
            "SELECT ARRAY[1, 2]"
        );
    }

    #[test]
    fn columns_with_subqueries_over_an_empty_table_are_null() {
        assert_eq!(
            with_quarry_rewrites(
                "SELECT pol.polname, CASE WHEN pol.polroles = '{0}' THEN NULL ELSE \
                 array_to_string(array(select rolname from pg_roles where oid = any (pol.polroles)), ',') END \
                 FROM pg_catalog.pg_policy pol WHERE pol.polrelid = 1 ORDER BY 1"
            ),
            "SELECT pol.polname, NULL AS \"case\" FROM pg_catalog.pg_policy pol WHERE pol.polrelid = 1 ORDER BY 1"
        );
    }

    #[test]
    fn outer_row_conditions_leave_the_subquery() {
        let sql = "SELECT (SELECT d.v FROM pg_catalog.pg_attrdef d \
                   WHERE a.atthasdef AND d.adrelid = a.attrelid) FROM pg_catalog.pg_attribute a";
        assert_eq!(
            with_quarry_rewrites(sql),
            "SELECT CASE WHEN a.atthasdef THEN (SELECT max(d.v) FROM pg_catalog.pg_attrdef d \
             WHERE d.adrelid = a.attrelid) END FROM pg_catalog.pg_attribute a"
        );
        // A condition on the subquery's own table stays where it is.
        let own = "SELECT (SELECT max(d.v) FROM d WHERE d.ok AND d.k = a.k) FROM a";
        assert_eq!(with_quarry_rewrites(own), own);
    }

    #[test]
    fn max_is_added_only_over_pg_catalog() {
        let user = "SELECT (SELECT u.v FROM u WHERE u.k = t.k) FROM t";
        assert_eq!(with_quarry_rewrites(user), user);
    }

    #[test]
    fn functions_quarry_answers_by_rewriting() {
        assert_eq!(
            with_quarry_rewrites("SELECT pg_get_serial_sequence('t', 'c')"),
            "SELECT CAST(NULL AS TEXT) AS pg_get_serial_sequence"
        );
        assert_eq!(
            with_quarry_rewrites("SELECT generate_subscripts(a, 1) FROM t"),
            "SELECT unnest(generate_series(1, array_length(a, 1))) AS generate_subscripts FROM t"
        );
        assert_eq!(
            with_quarry_rewrites("SELECT typinput = 'pg_catalog.array_in'::regproc FROM pg_type"),
            "SELECT typinput = 'array_in' FROM pg_type"
        );
        assert!(
            with_quarry_rewrites("SELECT to_regtype('integer')")
                .contains("WHEN 'integer' THEN 'int4'")
        );
    }

    #[test]
    fn function_columns_are_named_after_the_function() {
        assert_eq!(
            with_quarry_rewrites("SELECT count(*), sum(x), count(y), n FROM t"),
            "SELECT count(*), sum(x) AS sum, count(y), n FROM t"
        );
        assert_eq!(
            with_quarry_rewrites("SELECT pg_catalog.version()"),
            "SELECT pg_catalog.version() AS version"
        );
        assert_eq!(
            with_quarry_rewrites("SELECT EXTRACT(YEAR FROM d), TRIM(s), CEIL(x) FROM t"),
            "SELECT EXTRACT(YEAR FROM d) AS extract, TRIM(s) AS btrim, CEIL(x) AS ceil FROM t"
        );
        // Not with `*`, whose columns might repeat the name.
        let star = "SELECT *, max(x) FROM t";
        assert_eq!(with_quarry_rewrites(star), star);
    }

    #[test]
    fn a_number_times_an_interval_becomes_an_interval_cast_from_text() {
        assert_eq!(
            with_quarry_rewrites("SELECT d + 3 * INTERVAL '1 MONTH' FROM t"),
            "SELECT d + CAST(CAST((3) * 1 AS VARCHAR) || ' MONTH' AS INTERVAL) FROM t"
        );
        assert_eq!(
            with_quarry_rewrites(
                "SELECT INTERVAL '1 year 2 days' * n, INTERVAL '2' DAY * n FROM t"
            ),
            "SELECT CAST(CAST((n) * 1 AS VARCHAR) || ' year' || ' ' || \
             CAST((n) * 2 AS VARCHAR) || ' days' AS INTERVAL), \
             CAST(CAST((n) * 2 AS VARCHAR) || ' DAY' AS INTERVAL) FROM t"
        );
        // Forms it cannot take apart are left to DataFusion.
        assert_eq!(
            with_quarry_rewrites("SELECT 2 * INTERVAL '01:30' FROM t"),
            "SELECT 2 * INTERVAL '01:30' FROM t"
        );
    }

    #[test]
    fn statements_it_cannot_parse_pass_through() {
        let odd = "SELECT FROM WHERE (";
        assert_eq!(with_quarry_rewrites(odd), odd);
    }
}
