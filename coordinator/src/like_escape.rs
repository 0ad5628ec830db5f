//! `LIKE ... ESCAPE 'c'` with an escape character other than the backslash.
//!
//! DataFusion only executes LIKE with the backslash as escape; PostgreSQL clients use others
//! (SQLAlchemy's inspector sends `nspname NOT LIKE 'pg/_' || '%' ESCAPE '/'`). After constant
//! folding the pattern is a literal, so this rule rewrites it to the backslash form, which
//! means the same: `c` + x becomes `\` + x, and a literal backslash becomes `\\`.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::expr::Like;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub(crate) struct LikeEscape;

impl OptimizerRule for LikeEscape {
    fn name(&self) -> &str {
        "quarry_like_escape"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        plan.map_expressions(|expr| expr.transform(rewrite_like))
    }
}

fn rewrite_like(expr: Expr) -> Result<Transformed<Expr>> {
    let Expr::Like(like) = expr else {
        return Ok(Transformed::no(expr));
    };
    let escape = match like.escape_char {
        Some(c) if c != '\\' => c,
        _ => return Ok(Transformed::no(Expr::Like(like))),
    };
    // The pattern keeps its string type (Utf8View beside a Utf8View column).
    let pattern = match like.pattern.as_ref() {
        Expr::Literal(ScalarValue::Utf8(Some(p)), _) => {
            ScalarValue::Utf8(Some(backslash_pattern(p, escape)?))
        }
        Expr::Literal(ScalarValue::LargeUtf8(Some(p)), _) => {
            ScalarValue::LargeUtf8(Some(backslash_pattern(p, escape)?))
        }
        Expr::Literal(ScalarValue::Utf8View(Some(p)), _) => {
            ScalarValue::Utf8View(Some(backslash_pattern(p, escape)?))
        }
        // A pattern computed per row keeps its escape; DataFusion then names the limitation.
        _ => return Ok(Transformed::no(Expr::Like(like))),
    };
    Ok(Transformed::yes(Expr::Like(Like {
        pattern: Box::new(Expr::Literal(pattern, None)),
        escape_char: None,
        ..like
    })))
}

/// `pattern` with escape character `escape` rewritten to use the backslash.
fn backslash_pattern(pattern: &str, escape: char) -> Result<String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            let Some(next) = chars.next() else {
                return plan_err!("LIKE pattern must not end with escape character '{escape}'");
            };
            out.push('\\');
            out.push(next);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_become_backslashes() {
        assert_eq!(backslash_pattern("pg/_%", '/').unwrap(), "pg\\_%");
        assert_eq!(backslash_pattern("a//b", '/').unwrap(), "a\\/b");
        assert_eq!(backslash_pattern("c:\\x#%", '#').unwrap(), "c:\\\\x\\%");
        let err = backslash_pattern("ab#", '#').unwrap_err().to_string();
        assert!(
            err.contains("must not end with escape character '#'"),
            "{err}"
        );
    }
}
