//! Dates and times as PostgreSQL reads and computes them, where DataFusion differs.
//!
//! [`TimeLiterals`]: timestamps and times written without seconds (`'2024-01-01 10:00'`,
//! `TIMESTAMP '2024-01-01 10:00+02'`, `'10:00'::time`), which PostgreSQL reads and Arrow's
//! parser refuses ("error parsing time"). After type coercion every such value is a string
//! constant cast to a timestamp or time type, explicitly or for a comparison; the rule
//! adds the `:00` seconds to those constants before the optimizer folds the casts.
//!
//! [`DateWithTime`]: a date plus or minus an interval with hours, minutes or seconds (or
//! one computed as the query runs, whose parts are not known when planning).
//! PostgreSQL's answer is a timestamp (`DATE '2024-01-01' + INTERVAL '90 minutes'` is
//! `2024-01-01 01:30:00`); DataFusion's is a date, the time lost. The date is cast to a
//! timestamp first, before type coercion, so comparisons with the result are coerced as
//! usual. Intervals of whole days or months keep DataFusion's date (the same day
//! PostgreSQL's timestamp starts), so date filters such as TPC-H's keep pruning by date.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Cast, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub(crate) struct TimeLiterals;

impl AnalyzerRule for TimeLiterals {
    fn name(&self) -> &str {
        "quarry_time_literals"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        rewrite_expressions(plan, |expr, _| with_seconds(expr))
    }
}

/// Runs before type coercion (engine.rs puts it first).
#[derive(Debug, Default)]
pub(crate) struct DateWithTime;

impl AnalyzerRule for DateWithTime {
    fn name(&self) -> &str {
        "quarry_date_with_time"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        rewrite_expressions(plan, timestamp_of_date)
    }
}

/// `plan` and its subqueries with `rewrite` applied to every expression, bottom up, given
/// the schema of the node's inputs. Output columns keep their names (a changed constant
/// changes an expression's name), and a node whose expressions changed recomputes its
/// schema (a date may have become a timestamp).
fn rewrite_expressions(
    plan: LogicalPlan,
    rewrite: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|plan| {
        let mut schema = DFSchema::empty();
        for input in plan.inputs() {
            schema.merge(input.schema());
        }
        let names = NamePreserver::new(&plan);
        let rewritten = plan.map_expressions(|expr| {
            let name = names.save(&expr);
            Ok(expr
                .transform_up(|e| rewrite(e, &schema))?
                .update_data(|e| name.restore(e)))
        })?;
        if rewritten.transformed {
            rewritten.map_data(LogicalPlan::recompute_schema)
        } else {
            Ok(rewritten)
        }
    })
    .map(|t| t.data)
}

fn timestamp_of_date(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
        return Ok(Transformed::no(expr));
    };
    let is_date = |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Date32 | DataType::Date64));
    let has_time = |e: &Expr| has_time(e, schema);
    let timestamp = |e: Box<Expr>| {
        Box::new(Expr::Cast(Cast::new(
            e,
            DataType::Timestamp(TimeUnit::Nanosecond, None),
        )))
    };
    let (left, right) = match op {
        Operator::Plus | Operator::Minus if is_date(&left) && has_time(&right) => {
            (timestamp(left), right)
        }
        Operator::Plus if has_time(&left) && is_date(&right) => (left, timestamp(right)),
        _ => {
            return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                left,
                op,
                right,
            })));
        }
    };
    Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
        left,
        op,
        right,
    })))
}

/// Whether interval `expr` may have a part smaller than a day: a constant that has one,
/// or any interval computed as the query runs (`n * INTERVAL '1 minute'`, Tableau's
/// DATEADD, is computed from text).
fn has_time(expr: &Expr, schema: &DFSchema) -> bool {
    match expr {
        Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) => v.nanoseconds != 0,
        Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => v.milliseconds != 0,
        Expr::Literal(..) => false,
        Expr::Negative(inner) => has_time(inner, schema),
        _ => matches!(expr.get_type(schema), Ok(DataType::Interval(_))),
    }
}

fn with_seconds(expr: Expr) -> Result<Transformed<Expr>> {
    let (Expr::Cast(Cast { expr: inner, field }) | Expr::TryCast(TryCast { expr: inner, field })) =
        &expr
    else {
        return Ok(Transformed::no(expr));
    };
    let time_only = match field.data_type() {
        DataType::Timestamp(..) => false,
        DataType::Time32(_) | DataType::Time64(_) => true,
        _ => return Ok(Transformed::no(expr)),
    };
    let Expr::Literal(value, metadata) = inner.as_ref() else {
        return Ok(Transformed::no(expr));
    };
    let completed = match value {
        ScalarValue::Utf8(Some(text)) => {
            completed(text, time_only).map(|t| ScalarValue::Utf8(Some(t)))
        }
        ScalarValue::Utf8View(Some(text)) => {
            completed(text, time_only).map(|t| ScalarValue::Utf8View(Some(t)))
        }
        ScalarValue::LargeUtf8(Some(text)) => {
            completed(text, time_only).map(|t| ScalarValue::LargeUtf8(Some(t)))
        }
        _ => None,
    };
    let Some(completed) = completed else {
        return Ok(Transformed::no(expr));
    };
    let literal = Box::new(Expr::Literal(completed, metadata.clone()));
    Ok(Transformed::yes(match expr {
        Expr::Cast(cast) => Expr::Cast(Cast {
            expr: literal,
            ..cast
        }),
        Expr::TryCast(cast) => Expr::TryCast(TryCast {
            expr: literal,
            ..cast
        }),
        other => other,
    }))
}

/// `text` with `:00` seconds after its hours and minutes when it has none; None when it
/// has seconds already or is not a date and time (a time when `time_only`).
fn completed(text: &str, time_only: bool) -> Option<String> {
    let trimmed = text.trim();
    let time_start = if time_only {
        0
    } else {
        // YYYY-MM-DD, then a space or T.
        let date = trimmed.get(..10)?;
        let is_date = date.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
        if !is_date || !matches!(trimmed.as_bytes().get(10), Some(b' ' | b'T')) {
            return None;
        }
        11
    };
    let time = trimmed.get(time_start..)?;
    let hours = time.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=2).contains(&hours) || time.as_bytes().get(hours) != Some(&b':') {
        return None;
    }
    let minutes_end = hours + 1 + 2;
    let minutes = time.get(hours + 1..minutes_end)?;
    if !minutes.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if time[minutes_end..].starts_with(|c: char| c == ':' || c.is_ascii_digit()) {
        return None;
    }
    let at = time_start + minutes_end;
    Some(format!("{}:00{}", &trimmed[..at], &trimmed[at..]))
}

#[cfg(test)]
mod tests {
    use super::completed;

    #[test]
    fn times_without_seconds_get_them() {
        assert_eq!(
            completed("2024-01-01 10:00", false).as_deref(),
            Some("2024-01-01 10:00:00")
        );
        assert_eq!(
            completed("2024-01-01T9:30+02", false).as_deref(),
            Some("2024-01-01T9:30:00+02")
        );
        assert_eq!(
            completed("2024-01-01 10:00 UTC", false).as_deref(),
            Some("2024-01-01 10:00:00 UTC")
        );
        assert_eq!(completed("10:00", true).as_deref(), Some("10:00:00"));
    }

    #[test]
    fn complete_or_other_values_are_left_alone() {
        assert_eq!(completed("2024-01-01 10:00:00", false), None);
        assert_eq!(completed("2024-01-01", false), None);
        assert_eq!(completed("10:00:00.5", true), None);
        assert_eq!(completed("now", false), None);
        assert_eq!(completed("2024-01-01 10:0", false), None);
    }
}
