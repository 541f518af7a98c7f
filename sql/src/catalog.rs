//! The tables a session knows, as declared by `CREATE TABLE`.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use weir_connectors::ConnectorTable;
use weir_engine::operators::project::ProjectPlan;
use weir_engine::source::WatermarkPlan;

/// One table: its row, connector and event-time declaration.
#[derive(Debug, Clone)]
pub struct TableDef {
    pub name: String,
    /// The `CREATE TABLE` statement, for `SHOW CREATE`-like output.
    pub ddl: String,
    /// The row queries see: physical and computed columns, in declared order.
    pub schema: SchemaRef,
    /// The columns the connector reads or writes.
    pub physical: SchemaRef,
    /// Physical row to full row, when there are computed columns.
    pub computed: Option<Arc<ProjectPlan>>,
    /// `WATERMARK FOR …`, compiled against the full row. Its `interval` is
    /// filled in from the session's settings when a job starts.
    pub watermark: Option<WatermarkPlan>,
    pub connector: ConnectorTable,
    /// `WITH (…)` as written.
    pub options: BTreeMap<String, String>,
    /// The declaration (LIKE merged in), for tables declared `LIKE` this
    /// one; `None` for tables Weir creates itself.
    pub declared: Option<Arc<crate::statement::CreateTable>>,
}

impl TableDef {
    /// A `memory` table Weir creates itself (a materialized view, an
    /// undeclared `LATE DATA INTO` table), described by `ddl`.
    pub fn memory(name: &str, ddl: String, schema: SchemaRef) -> Self {
        Self {
            name: name.to_string(),
            ddl,
            schema: Arc::clone(&schema),
            physical: Arc::clone(&schema),
            computed: None,
            watermark: None,
            connector: weir_connectors::memory_table(schema),
            options: BTreeMap::new(),
            declared: None,
        }
    }

    /// Name of the first column declared `AS PROCTIME()`: the table's
    /// processing-time attribute.
    pub fn proctime(&self) -> Option<&str> {
        let declared = self.declared.as_ref()?;
        declared.columns.iter().find_map(|c| {
            let crate::statement::ColumnKind::Computed(e) = &c.kind else { return None };
            let datafusion::sql::sqlparser::ast::Expr::Function(f) = e.as_ref() else { return None };
            if !f.name.to_string().eq_ignore_ascii_case("PROCTIME") {
                return None;
            }
            let name = crate::planner::table::normalize(&c.name);
            self.schema.fields().iter().find(|field| field.name() == &name).map(|f| f.name().as_str())
        })
    }

    /// Name of the rowtime column, if the table declares a watermark.
    pub fn rowtime(&self) -> Option<&str> {
        self.watermark
            .as_ref()
            .map(|w| self.schema.field(w.time_column).name().as_str())
    }
}

/// Tables by normalised name.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    tables: BTreeMap<String, Arc<TableDef>>,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&Arc<TableDef>> {
        self.tables.get(name)
    }

    pub fn insert(&mut self, table: TableDef) {
        self.tables.insert(table.name.clone(), Arc::new(table));
    }

    pub fn remove(&mut self, name: &str) -> Option<Arc<TableDef>> {
        self.tables.remove(name)
    }

    pub fn tables(&self) -> impl Iterator<Item = &Arc<TableDef>> {
        self.tables.values()
    }
}

pub mod names;
