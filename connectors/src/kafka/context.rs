//! Where librdkafka's own logs and errors go: to `tracing` at debug level.
//! librdkafka retries broker failures itself and reports them many times a
//! second; what matters to a user surfaces as Weir's own errors, with what
//! Weir was doing, when an operation times out or fails for good.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;

/// The context of Weir's Kafka consumers.
#[derive(Default)]
pub(crate) struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "weir::kafka", %error, reason, "librdkafka");
    }
}

impl ConsumerContext for Quiet {}

/// librdkafka's log lines, at debug level whatever their level.
pub(crate) fn log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    tracing::debug!(target: "weir::kafka", ?level, facility, message, "librdkafka");
}
