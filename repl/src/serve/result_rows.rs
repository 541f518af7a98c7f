//! How many rows one query may send without a cursor. Rows stream to the
//! client as they are computed, so the count is known only while they go:
//! the row past the limit is replaced by a `54000` error, which ends the
//! query (its plan dropped with the stream), after the rows sent before it,
//! as PostgreSQL reports an error met while sending rows.

use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::error::PgWireError;
use futures::StreamExt;

/// `response`, ending with `too_many()` instead of its row `limit + 1`.
/// Other responses are returned as they are.
pub fn at_most(response: Response, limit: usize, too_many: impl Fn() -> PgWireError + Send + 'static) -> Response {
    let Response::Query(mut query) = response else { return response };
    let rows = std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
    query.data_rows = Box::pin(rows.scan((0usize, false), move |(sent, over), row| {
        let next = if *over {
            None
        } else if *sent == limit {
            *over = true;
            Some(Err(too_many()))
        } else {
            *sent += 1;
            Some(row)
        };
        futures::future::ready(next)
    }));
    Response::Query(query)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion_postgres::pgwire::api::results::QueryResponse;
    use datafusion_postgres::pgwire::messages::data::DataRow;

    use super::*;

    fn rows(n: usize) -> Response {
        let rows = (0..n).map(|_| Ok(DataRow::new(Default::default(), 0)));
        Response::Query(QueryResponse::new(Arc::new(Vec::new()), futures::stream::iter(rows)))
    }

    async fn drain(response: Response) -> (usize, bool) {
        let Response::Query(mut q) = response else { panic!("rows expected") };
        let mut sent = 0;
        while let Some(row) = q.data_rows.next().await {
            match row {
                Ok(_) => sent += 1,
                Err(_) => return (sent, q.data_rows.next().await.is_none()),
            }
        }
        (sent, false)
    }

    #[tokio::test]
    async fn the_row_past_the_limit_ends_the_query_with_an_error() {
        let too_many = || PgWireError::PortalNotStarted;
        assert_eq!(drain(at_most(rows(3), 3, too_many)).await, (3, false));
        assert_eq!(drain(at_most(rows(4), 3, too_many)).await, (3, true));
        assert_eq!(drain(at_most(rows(1000), 0, too_many)).await, (0, true));
    }
}
