//! Statement sets: several INSERTs run as one job (Flink's `EXECUTE
//! STATEMENT SET BEGIN … END`, and the SQL client's `BEGIN STATEMENT SET;`
//! … `END;`). The job's plans are joined into one: its sinks commit at the
//! same checkpoints, and a restart resumes them all from the same one. A
//! table several INSERTs read alike is read once, as Flink does, its rows
//! fed to each of them (`weir_engine::plan::join`).

use weir_engine::plan::join;

use super::{Outcome, Planned, Session};
use crate::error::{Result, SqlError};
use crate::script::ParsedStatement;
use crate::statement::WeirStatement;

impl Session {
    /// Answers `BEGIN STATEMENT SET` / `END`, and keeps the INSERTs in
    /// between; `None` for every other statement, which runs as usual.
    pub(super) fn collect_into_statement_set(&mut self, s: &ParsedStatement) -> Result<Option<Outcome>> {
        match (&s.statement, &mut self.statement_set) {
            (WeirStatement::BeginStatementSet, None) => {
                self.statement_set = Some(Vec::new());
                Ok(Some(Outcome::Done("Statement set begun: INSERT statements up to END run as one job.".into())))
            }
            (WeirStatement::BeginStatementSet, Some(_)) => {
                Err(SqlError::plan("a statement set is already open: END it first", None))
            }
            (WeirStatement::EndStatementSet, None) => Err(SqlError::plan("END without BEGIN STATEMENT SET", None)),
            (WeirStatement::EndStatementSet, Some(_)) => Ok(None),
            (WeirStatement::Insert { .. }, Some(set)) => {
                set.push(s.clone());
                Ok(Some(Outcome::Done(format!("INSERT {} of the statement set added.", set.len()))))
            }
            (_, Some(_)) => Err(SqlError::unsupported(
                "statements other than INSERT inside BEGIN STATEMENT SET … END",
                None,
            )),
            (_, None) => Ok(None),
        }
    }

    /// Runs `END` of an open statement set.
    pub(super) async fn end_statement_set(&mut self) -> Result<Outcome> {
        let set = self.statement_set.take().unwrap_or_default();
        if set.is_empty() {
            return Err(SqlError::plan("a statement set needs at least one INSERT", None));
        }
        let text: Vec<&str> = set.iter().map(|s| s.text.as_str()).collect();
        self.state_ttl = set.iter().flat_map(|s| s.state_ttl.clone()).collect();
        self.state_ttl_in_set = true;
        let mut inserts = Vec::new();
        let mut copies = Vec::new();
        for s in &set {
            match self.hinted(&s.statement, &s.hints) {
                Ok((insert, names)) => {
                    inserts.push(insert);
                    copies.extend(names);
                }
                Err(e) => {
                    self.drop_hinted(copies);
                    return Err(e);
                }
            }
        }
        let outcome = self.run_statement_set(&inserts, &text.join(";\n")).await;
        self.drop_hinted(copies);
        outcome
    }

    /// Plans every INSERT of `inserts` and starts them as one job, whose
    /// identity is the set's `text` and the DDL of what it reads.
    pub(super) async fn run_statement_set(&mut self, inserts: &[WeirStatement], text: &str) -> Result<Outcome> {
        let (planned, views) = self.plan_statement_set(inserts).await?;
        let handle = self.start(planned, &format!("{text}{views}"), true)?;
        Ok(Outcome::JobStarted(handle))
    }

    /// The one plan of every INSERT of `inserts` (a source they read alike
    /// read once, [`weir_engine::plan::join`]), and the DDL of the views
    /// they read.
    pub(super) async fn plan_statement_set(&mut self, inserts: &[WeirStatement]) -> Result<(Planned, String)> {
        let mut plans = Vec::new();
        let mut created_tables = Vec::new();
        let mut views = String::new();
        for insert in inserts {
            let statement = self.written_out(insert)?;
            let WeirStatement::Insert { table, query, clauses, .. } = statement.as_ref() else {
                return Err(SqlError::plan("a statement set holds INSERT statements only", None));
            };
            views.push_str(&self.view_ddls(insert));
            let planned = self.plan_insert(table, query, clauses).await?;
            plans.push(planned.plan);
            created_tables.extend(planned.created_tables);
        }
        Ok((Planned { plan: join(plans), created_tables }, views))
    }
}
