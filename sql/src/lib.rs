//! Weir's SQL layer: the dialect, the statements, the catalog, and planning
//! from SQL to a streaming plan (through DataFusion's logical plan).

pub mod catalog;
pub mod collect;
pub mod depth;
pub mod dialect;
pub mod error;
pub mod functions;
pub mod hints;
pub mod planner;
pub mod results;
pub mod session;
pub mod settings;
pub mod script;
pub mod statement;
pub mod system;
pub mod time_zone;
pub mod types;
pub mod views;

pub use error::{Position, SqlError};
pub use session::{Outcome, Session};
pub use script::{ParsedStatement, parse_script};
pub use statement::WeirStatement;
