//! Stateless operators, evaluated with DataFusion physical expressions.

pub mod evaluate;
pub mod expand;
pub mod filter;
pub mod positional_cast;
pub mod project;
pub mod unnest;
