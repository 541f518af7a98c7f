//! How deep a statement nests, and the stack its parsing runs on.
//!
//! Cloning, printing, planning, evaluating and dropping a syntax tree all
//! recurse over it, and sqlparser builds a chain of infix operators
//! (`1+1+…+1`, `a AND b AND …`, `x::INT::INT…`) in a loop, without
//! recursion: a statement of a few kilobytes can nest deeply enough to
//! overflow a thread's stack, which aborts the process and every job in it.
//! So a statement nesting deeper than `table.planner.max-expression-depth`
//! is refused right after it is parsed, before anything else walks it; and
//! parsing runs on a stack large enough to drop such a tree (dropping
//! recurses too). Parentheses, subqueries and prefix operators are bounded
//! earlier, by sqlparser's own recursion limit.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Query, Visit, Visitor};

use crate::error::{Position, Result, SqlError};
use crate::settings::MAX_EXPRESSION_DEPTH;
use crate::statement::WeirStatement;

/// sqlparser's limit on its own recursion (its default): parentheses,
/// subqueries and prefix operators nested deeper are a syntax error.
pub const PARSER_RECURSION_LIMIT: usize = 50;

/// The default of `table.planner.max-expression-depth`: far beyond any
/// hand-written query, and small enough that every walk over a tree this
/// deep fits the stacks Weir runs on (see [`THREAD_STACK`]).
pub const DEFAULT_EXPRESSION_DEPTH: usize = 1_000;

/// The stack of every thread that plans or runs a query (the main thread's
/// work and the runtime's workers): what a tree of
/// [`MAX_EXPRESSION_DEPTH`] levels needs in an unoptimised build (about
/// 5 KiB a level), with room to spare. Only the pages used are ever
/// committed.
pub const THREAD_STACK: usize = 64 << 20;

/// Stack bytes to set aside per byte of SQL text while parsing: a tree can
/// nest one level per two bytes (`1+`), and dropping a level takes a few
/// hundred bytes of stack.
const STACK_PER_BYTE: usize = 256;

/// The longest script Weir parses. sqlparser holds every token of a
/// script and a tree node per operator: a script of operators costs about
/// 500 bytes of memory per byte of text while it is parsed, and its parsing
/// stack (see [`STACK_PER_BYTE`]) a quarter of that in address space.
pub const MAX_SCRIPT_BYTES: usize = 4 << 20;

/// Runs `parse` over `sql` on a stack large enough to build and drop any
/// tree that text can make; refuses scripts over [`MAX_SCRIPT_BYTES`].
pub(crate) fn on_parsing_stack<T>(sql: &str, parse: impl FnOnce() -> Result<T>) -> Result<T> {
    if sql.len() > MAX_SCRIPT_BYTES {
        return Err(SqlError::Limit {
            message: format!(
                "the script is {} bytes long; Weir parses scripts of at most {MAX_SCRIPT_BYTES} bytes (split it into several)",
                sql.len()
            ),
            position: None,
        });
    }
    stacker::grow(THREAD_STACK + sql.len() * STACK_PER_BYTE, parse)
}

/// Counts nesting while sqlparser's visitor walks a tree, and stops it as
/// soon as the limit is passed, so that the walk itself never goes deeper.
/// (Where the deep node is, is not looked up: a node's span is computed
/// from its whole subtree, recursively.)
struct Nesting {
    now: usize,
    limit: usize,
}

impl Nesting {
    fn enter(&mut self) -> ControlFlow<()> {
        self.now += 1;
        match self.now > self.limit {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }
}

impl Visitor for Nesting {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.enter()
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.enter()
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }
}

/// Refuses `statement`, which starts at `at`, if its expressions and
/// queries nest more than `limit` levels deep.
pub fn check(statement: &WeirStatement, limit: usize, at: Position) -> Result<()> {
    let limit = limit.min(MAX_EXPRESSION_DEPTH);
    let mut nesting = Nesting { now: 0, limit };
    let stopped = match statement {
        WeirStatement::Insert { query, clauses, .. }
        | WeirStatement::Query { query, clauses }
        | WeirStatement::CreateMaterializedView { query, clauses, .. } => query
            .visit(&mut nesting)
            .is_break()
            || [&clauses.emit_early, &clauses.allowed_lateness]
                .into_iter()
                .flatten()
                .any(|e| e.visit(&mut nesting).is_break()),
        WeirStatement::CreateTable(table) => {
            let computed = table.columns.iter().filter_map(|c| match &c.kind {
                crate::statement::ColumnKind::Computed(e) => Some(e.as_ref()),
                _ => None,
            });
            computed.chain(table.watermark.as_ref().map(|w| &w.expr)).any(|e| e.visit(&mut nesting).is_break())
        }
        WeirStatement::CreateTableAs { query, .. } => query.visit(&mut nesting).is_break(),
        WeirStatement::Explain(inner) => return check(inner, limit, at),
        _ => false,
    };
    if !stopped {
        return Ok(());
    }
    let why = match limit {
        MAX_EXPRESSION_DEPTH => format!("the most Weir plans ('table.planner.max-expression-depth' is at most {MAX_EXPRESSION_DEPTH})"),
        _ => format!("the limit is 'table.planner.max-expression-depth' (at most {MAX_EXPRESSION_DEPTH})"),
    };
    Err(SqlError::Limit {
        message: format!(
            "the statement nests more than {limit} levels deep (operators, function calls and subqueries within one \
             another); {why}"
        ),
        position: Some(at),
    })
}
