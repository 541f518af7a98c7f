//! Stateless operators, evaluated with DataFusion physical expressions.

pub mod filter;
pub mod project;
