//! Planning a session's streaming statements: DataFusion's logical plan of
//! the query (views, window TVFs, lookup joins and MATCH_RECOGNIZE cut out
//! first), then the streaming plan into a sink.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::empty::EmptyTable;
use datafusion::common::TableReference;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, Query, Statement};
use tokio::sync::mpsc;
use weir_engine::plan::SinkPlan;

use super::{Planned, Session, table_name};
use crate::collect::CollectSink;
use crate::error::{Result, SqlError};
use crate::planner::stream::{LateClauses, LateTarget, StreamPlanner};
use crate::planner::validate::check_streaming_query;
use crate::planner::window_tvf;
use crate::statement::{WindowClauses, position_of};

impl Session {
    pub(super) async fn plan_insert(
        &self,
        table: &ObjectName,
        query: &Query,
        clauses: &WindowClauses,
    ) -> Result<Planned> {
        let name = crate::catalog::names::table_part(table)?;
        let def = self.catalog.get(&name).ok_or_else(|| match self.views.get(&name) {
            // As in Flink, a view is read, never written.
            Some(_) => SqlError::plan(format!("'{name}' is a view: INSERT INTO a table"), position_of(table)),
            None => SqlError::unknown_table(name.clone(), position_of(table)),
        })?;
        let connector = def.connector.sink.clone().ok_or_else(|| {
            SqlError::plan(
                format!(
                    "table '{name}' cannot be written: connector '{}' is a source only",
                    def.connector.connector
                ),
                position_of(table),
            )
        })?;
        let sink = SinkPlan {
            table: name,
            connector,
            upsert_key: None,
        };
        let declared = Arc::clone(&def.schema);
        self.plan_job(query, clauses, sink, Some(&declared)).await
    }

    pub(super) async fn plan_select(
        &self,
        query: &Query,
        clauses: &WindowClauses,
    ) -> Result<(Planned, SchemaRef, mpsc::Receiver<RecordBatch>)> {
        let schema = {
            let (logical, _) = self.logical_plan(query).await?;
            Arc::new(logical.schema().as_arrow().clone())
        };
        let (collect, rows) = CollectSink::new(Arc::clone(&schema));
        let sink = SinkPlan {
            table: "client".into(),
            connector: Arc::new(collect),
            upsert_key: None,
        };
        Ok((self.plan_job(query, clauses, sink, None).await?, schema, rows))
    }

    /// Plans a job of `query` into `sink`; `declared` is the sink table's
    /// schema as declared, whose instants and wall-clock times the query's
    /// are converted to in the session's zone.
    pub(super) async fn plan_job(
        &self,
        query: &Query,
        clauses: &WindowClauses,
        sink: SinkPlan,
        declared: Option<&SchemaRef>,
    ) -> Result<Planned> {
        let (logical, windows) = self.logical_plan(query).await?;
        let logical = match declared {
            Some(d) => self.to_declared_times(logical, d)?,
            None => logical,
        };
        let state = self.ctx.state();
        let mut planner = StreamPlanner::new(&state, &self.catalog, &windows, &self.settings);
        planner.join_position = crate::planner::validate::first_join(query);
        planner.state_ttl.set_hints(&self.state_ttl, !self.state_ttl_in_set);
        if !clauses.is_empty() {
            planner = planner.with_clauses(self.resolve_clauses(clauses)?);
        }
        // What the planner cannot place more precisely is at the query.
        let (plan, created_table) = planner
            .plan_into_sink(&logical, sink)
            .map_err(|e| e.or_at(position_of(query)))?;
        Ok(Planned {
            plan,
            created_tables: created_table.into_iter().collect(),
        })
    }

    pub(super) fn resolve_clauses(&self, c: &WindowClauses) -> Result<LateClauses> {
        let emit_early = match &c.emit_early {
            Some(e) => {
                let ms = window_tvf::interval_ms(e, &self.ctx.state())?;
                if ms <= 0 {
                    return Err(SqlError::plan(
                        "EMIT EARLY EVERY needs a positive interval",
                        position_of(e),
                    ));
                }
                Some(std::time::Duration::from_millis(ms as u64))
            }
            None => None,
        };
        let allowed_lateness = match &c.allowed_lateness {
            Some(e) => window_tvf::interval_ms(e, &self.ctx.state())?,
            None => 0,
        };
        if allowed_lateness < 0 {
            return Err(SqlError::plan("ALLOWED LATENESS must not be negative", c.position));
        }
        let late_data_into = c.late_data_into.as_ref().map(|name| {
            let n = table_name(name);
            match self.catalog.get(&n) {
                Some(def) => LateTarget::Declared(Arc::clone(def)),
                None => LateTarget::New(n),
            }
        });
        Ok(LateClauses {
            allowed_lateness,
            emit_early,
            late_data_into,
            position: c.position,
        })
    }

    /// DataFusion's analysed logical plan of a streaming query, and the
    /// window relations it reads.
    pub(super) async fn logical_plan(
        &self,
        query: &Query,
    ) -> Result<(
        LogicalPlan,
        std::collections::HashMap<String, window_tvf::WindowRelation>,
    )> {
        check_streaming_query(query)?;
        // DataFusion's errors that name no place are at the query.
        let at = |e: datafusion::error::DataFusionError| SqlError::from(e).or_at(position_of(query));
        let mut query = query.clone();
        let state = self.ctx.state();
        let twins = crate::planner::lookup::rewrite(&mut query, &self.catalog)?;
        // Views windowed by a TVF are planned first: the TVF windows their
        // rows, and their own TVFs' relations join this query's.
        let mut windows = std::collections::HashMap::new();
        let mut views = std::collections::HashMap::new();
        for (name, view_query) in self.views.windowed(&query)? {
            let (plan, inner) = Box::pin(self.logical_plan(&view_query)).await?;
            windows.extend(inner);
            views.insert(name, Arc::new(plan));
        }
        let zone = self.settings.local_zone();
        let inputs = window_tvf::Inputs {
            catalog: &self.catalog,
            views: &views,
            zone: &zone,
        };
        windows.extend(window_tvf::rewrite(&mut query, &inputs, &state)?);
        // MATCH_RECOGNIZE inputs are planned first, as views under a TVF.
        let mut matches = Vec::new();
        for pending in crate::planner::match_recognize::rewrite(&mut query)? {
            let (input, inner) = Box::pin(self.logical_plan(&pending.input)).await?;
            windows.extend(inner);
            matches.push(pending.plan(input, &state)?);
        }
        for m in &matches {
            self.ctx.register_table(
                TableReference::bare(m.name.as_str()),
                crate::planner::match_recognize::table(m),
            )?;
        }
        // The relations standing for TVF calls exist only while this query
        // is planned.
        for rel in windows.values() {
            self.ctx.register_table(
                TableReference::bare(rel.name.as_str()),
                Arc::new(EmptyTable::new(Arc::clone(&rel.schema))),
            )?;
        }
        let twin_names: Vec<String> = twins
            .iter()
            .map(|t| format!("{}{}", crate::planner::lookup::LOOKUP_TWIN, t.name))
            .collect();
        for (twin, name) in twins.iter().zip(&twin_names) {
            if let Some(lookup) = &twin.connector.lookup {
                self.ctx.register_table(
                    TableReference::bare(name.as_str()),
                    Arc::new(EmptyTable::new(lookup.schema())),
                )?;
            }
        }
        let plan = match crate::planner::set_operations::rewrite(&mut query, &state).await {
            Ok(()) => Ok(state
                .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(Box::new(query)))))
                .await),
            Err(e) => Err(e),
        };
        for rel in windows.values() {
            self.ctx.deregister_table(TableReference::bare(rel.name.as_str()))?;
        }
        for name in &twin_names {
            self.ctx.deregister_table(TableReference::bare(name.as_str()))?;
        }
        for m in &matches {
            self.ctx.deregister_table(TableReference::bare(m.name.as_str()))?;
        }
        let plan = plan?;
        let plan = state
            .analyzer()
            .execute_and_check(plan.map_err(at)?, state.config_options(), |_, _| {})
            .map_err(at)?;
        let plan = self.localize(plan)?;
        let plan = crate::planner::optimize::optimize(plan, &state).map_err(at)?;
        Ok((plan, windows))
    }
}
