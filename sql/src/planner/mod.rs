//! From SQL to a streaming plan: window TVFs rewritten in the AST, the query
//! planned by DataFusion, then mapped to stages of streaming operators.

pub mod field_names;
pub mod flink_calls;
pub mod floor_ceil;
pub mod legacy_windows;
pub mod lookup;
pub mod optimize;
pub mod set_operations;
pub mod stream;
pub mod table;
pub mod table_like;
pub mod validate;
pub mod window_tvf;
