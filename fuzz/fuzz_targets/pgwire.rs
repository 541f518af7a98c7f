//! Arbitrary bytes from a client after a valid startup message, decoded
//! as `weir serve` decodes them (pgwire's frontend messages), and the SQL
//! of every simple-query and Parse message routed as `weir serve` routes it
//! (Weir's parser, else the PostgreSQL dialect's): never a panic.
//!
//! `weir serve`'s own router (`repl/src/serve/handler.rs`) lives in the
//! binary crate, out of a fuzz target's reach: this target calls the same
//! two parsers in the same order.
#![no_main]

use bytes::BytesMut;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::pgwire::messages::startup::Startup;
use datafusion_postgres::pgwire::messages::{DecodeContext, Message, PgWireFrontendMessage, ProtocolVersion};
use libfuzzer_sys::fuzz_target;

/// A client's startup message, as psql sends it.
fn startup() -> BytesMut {
    let mut message = Startup::new();
    message.parameters.insert("user".into(), "weir".into());
    message.parameters.insert("database".into(), "weir".into());
    let mut buf = BytesMut::new();
    message.encode(&mut buf).expect("a startup message encodes");
    buf
}

/// Routes a client's SQL as `weir serve` does.
fn route(sql: &str) {
    if weir_sql::parse_script(sql).is_err() {
        POSTGRES.with(|postgres| {
            let _ = postgres.parse(sql);
        });
    }
}

thread_local! {
    /// Built once: it tokenizes its rules' SQL when made.
    static POSTGRES: PostgresCompatibilityParser = PostgresCompatibilityParser::new();
}

/// libfuzzer-sys makes every panic abort, even one caught on purpose: back
/// to the default hook. A panic that escapes still aborts, through
/// libfuzzer-sys's own catch.
static DEFAULT_PANIC_HOOK: std::sync::Once = std::sync::Once::new();

/// pgwire 0.41's decoder panics on some malformed messages (a Bind whose
/// parameter lengths overrun it: `BytesMut::split_to` out of bounds). In
/// `weir serve` that ends the connection's own tokio task only; here it
/// ends the input, so that fuzzing goes on into Weir's routing.
fn decode(buf: &mut BytesMut, ctx: &DecodeContext) -> Option<PgWireFrontendMessage> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| PgWireFrontendMessage::decode(buf, ctx)))
        .ok()?
        .ok()?
}

fuzz_target!(|data: &[u8]| {
    DEFAULT_PANIC_HOOK.call_once(|| drop(std::panic::take_hook()));
    let mut buf = startup();
    buf.extend_from_slice(data);
    let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
    // Decoding goes on while messages come whole; an error (or pgwire's
    // panic) closes the connection in the server.
    while let Some(message) = decode(&mut buf, &ctx) {
        match message {
            PgWireFrontendMessage::SslNegotiation(_) => ctx.awaiting_frontend_ssl = false,
            PgWireFrontendMessage::Startup(_) => ctx.awaiting_frontend_startup = false,
            PgWireFrontendMessage::Query(q) => route(&q.query),
            PgWireFrontendMessage::Parse(p) => route(&p.query),
            _ => {}
        }
    }
});
