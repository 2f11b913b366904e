//! The server's counters (`Stats`) as Prometheus text (exposition format 0.0.4), served
//! by the core on `Config::metrics_path`. Every metric is `roost_` prefixed; counters
//! end in `_total`, gauges do not. No label names a connection or a topic: a scrape
//! stays the same size however many there are.
//!
//! `Stats` is taken apart field by field with no `..`: a counter added to `Stats` does
//! not compile until it is given its metric here too.

use std::fmt::Write;

use crate::stats::Stats;

/// The `Content-Type` of the text.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

enum Kind {
    Counter,
    Gauge,
}

/// The exposition of `stats`.
pub(crate) fn render(stats: &Stats) -> String {
    let Stats {
        connections,
        topics,
        deliveries_skipped,
        slow_consumers_closed,
        backplane_published,
        backplane_received,
        backplane_dropped,
        backplane_malformed,
        backplane_reconnects,
        backplane_connected,
        tls_handshakes_failed,
        messages_received,
        bytes_received,
        messages_sent,
        bytes_sent,
        http_requests,
        upgrades_refused_400,
        upgrades_refused_403,
        upgrades_refused_404,
        upgrades_refused_426,
        upgrades_refused_431,
        upgrades_refused_503,
        upgrades_refused_other,
    } = *stats;
    use Kind::{Counter, Gauge};
    let metrics: [(&str, Kind, &str, u64); 16] = [
        ("connections", Gauge, "WebSocket connections open now.", connections as u64),
        ("topics", Gauge, "Topics with at least one subscriber.", topics as u64),
        (
            "deliveries_skipped_total",
            Counter,
            "Broadcast and publish messages a recipient over its send limit missed.",
            deliveries_skipped,
        ),
        (
            "slow_consumers_closed_total",
            Counter,
            "Recipients closed with 1008 for being over their send limit.",
            slow_consumers_closed,
        ),
        (
            "backplane_published_total",
            Counter,
            "Broadcasts and publishes Redis took for the other servers.",
            backplane_published,
        ),
        (
            "backplane_received_total",
            Counter,
            "Broadcasts and publishes of other servers that arrived through Redis.",
            backplane_received,
        ),
        (
            "backplane_dropped_total",
            Counter,
            "Broadcasts and publishes that did not go to Redis.",
            backplane_dropped,
        ),
        (
            "backplane_malformed_total",
            Counter,
            "Messages on the backplane's channels that were not readable envelopes.",
            backplane_malformed,
        ),
        (
            "backplane_reconnects_total",
            Counter,
            "Times the backplane reconnected after losing Redis.",
            backplane_reconnects,
        ),
        (
            "backplane_connected",
            Gauge,
            "1 while the backplane is connected to Redis and subscribed, else 0.",
            u64::from(backplane_connected),
        ),
        (
            "tls_handshakes_failed_total",
            Counter,
            "TLS handshakes that failed or timed out.",
            tls_handshakes_failed,
        ),
        (
            "messages_received_total",
            Counter,
            "Whole WebSocket messages received from clients.",
            messages_received,
        ),
        (
            "received_bytes_total",
            Counter,
            "Payload bytes of the messages received (after inflation).",
            bytes_received,
        ),
        (
            "messages_sent_total",
            Counter,
            "WebSocket messages queued for clients, per recipient.",
            messages_sent,
        ),
        ("sent_bytes_total", Counter, "Payload bytes of the messages sent, per recipient.", bytes_sent),
        ("http_requests_total", Counter, "HTTP requests answered by the HTTP side.", http_requests),
    ];
    let mut text = String::with_capacity(metrics.len() * 160);
    for (name, kind, help, value) in metrics {
        let kind = match kind {
            Counter => "counter",
            Gauge => "gauge",
        };
        // Writing to a String cannot fail.
        let _ =
            write!(text, "# HELP roost_{name} {help}\n# TYPE roost_{name} {kind}\nroost_{name} {value}\n");
    }
    // One family, a series per status: the status is a label, not a connection's.
    text.push_str(
        "# HELP roost_upgrades_refused_total WebSocket upgrade requests answered with another \
         status than 101.\n# TYPE roost_upgrades_refused_total counter\n",
    );
    let refused = [
        ("400", upgrades_refused_400),
        ("403", upgrades_refused_403),
        ("404", upgrades_refused_404),
        ("426", upgrades_refused_426),
        ("431", upgrades_refused_431),
        ("503", upgrades_refused_503),
        ("other", upgrades_refused_other),
    ];
    for (status, value) in refused {
        let _ = writeln!(text, "roost_upgrades_refused_total{{status=\"{status}\"}} {value}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_a_comment_or_a_sample_and_counters_end_in_total() {
        let stats = Stats {
            connections: 3,
            http_requests: 7,
            backplane_connected: true,
            upgrades_refused_403: 2,
            ..Stats::default()
        };
        let text = render(&stats);
        let mut kinds = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                kinds.insert(name.to_string(), kind.to_string());
            } else if !line.starts_with("# HELP roost_") {
                let (series, value) = line.split_once(' ').unwrap();
                value.parse::<u64>().unwrap();
                let name = series.split_once('{').map_or(series, |(name, _)| name);
                assert!(name.starts_with("roost_"), "{line}");
                assert_eq!(kinds[name] == "counter", name.ends_with("_total"), "{line}");
            }
        }
        assert!(text.contains("roost_connections 3\n") && text.contains("roost_http_requests_total 7\n"));
        assert!(text.contains("roost_backplane_connected 1\n"));
        assert!(text.contains("roost_upgrades_refused_total{status=\"403\"} 2\n"));
        assert_eq!(kinds.len(), 17);
    }
}
