//! What the functions' unit tests share: a DataFusion session with Weir's
//! functions registered, whose single-column results come back as text.

use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;

/// A session as Weir's, with its functions.
fn session() -> SessionContext {
    let ctx = SessionContext::new();
    crate::functions::register(&ctx);
    crate::time_zone::register(&ctx, &Default::default());
    ctx
}

/// The first column of `sql`'s result, one string a row ("NULL" for NULL).
pub(super) async fn query(sql: &str) -> Vec<String> {
    let batches = match session().sql(sql).await {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in &batches {
        let formatter = ArrayFormatter::try_new(batch.column(0).as_ref(), &options).expect("formatter");
        for row in 0..batch.num_rows() {
            out.push(formatter.value(row).to_string());
        }
    }
    out
}

/// The error `sql` fails with, planning or running.
pub(super) async fn query_err(sql: &str) -> String {
    let result = match session().sql(sql).await {
        Ok(df) => df.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => panic!("{sql}: expected an error"),
        Err(e) => e.to_string(),
    }
}
