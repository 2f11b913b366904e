//! `pubsub`: `topics` topics, each with one publisher and `subscribers` subscribers.
//! A subscriber connects to `URL/sub?topic=tI` and never sends; every message a
//! publisher sends on `URL/pub?topic=tI` must reach every subscriber of topic tI, once
//! and in order, and no other connection (the publisher is not a subscriber). The
//! publishers send concurrently. Reports deliveries per second over all subscribers,
//! delivery latency and what was lost. How much and how fast each publisher sends, and
//! how the start is synchronised: see `fanout.rs`.

use serde::Serialize;

use crate::cli::positive_whole;
use crate::fanout::{self, ChannelSpec, FanoutArgs, Layout};
use crate::ws::Target;
use crate::Outcome;

#[derive(clap::Args, Debug)]
pub struct PubsubArgs {
    /// The server's address, ws://HOST:PORT or wss://HOST:PORT (a path, if any, goes before /sub and /pub)
    #[arg(long, value_name = "URL", value_parser = Target::parse)]
    pub url: Target,
    /// Topics, each with one publisher
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = positive_whole)]
    pub topics: u64,
    /// Subscribers of each topic
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = positive_whole)]
    pub subscribers: u64,
    #[command(flatten)]
    pub fanout: FanoutArgs,
}

/// The RESULT fields of this mode, before those of every fan-out mode.
#[derive(Serialize)]
struct Fields {
    topics: usize,
    subscribers: usize,
}

/// `base` with `path` in place of its own path, which is kept as a prefix.
fn at(base: &Target, path: &str) -> Target {
    let prefix = base.path.trim_end_matches('/');
    Target { path: format!("{prefix}{path}"), ..base.clone() }
}

pub async fn run(args: &PubsubArgs) -> Result<Outcome, String> {
    let base = &args.url;
    let (topics, subscribers) = (args.topics as usize, args.subscribers as usize);
    let channels = (0..topics)
        .map(|i| ChannelSpec {
            sender: at(base, &format!("/pub?topic=t{i}")),
            receivers_at: vec![at(base, &format!("/sub?topic=t{i}"))],
            receivers: subscribers,
        })
        .collect();
    let layout = Layout {
        mode: "pubsub",
        url: base.url().trim_end_matches('/').to_string(),
        shape: format!("{topics} topics x (1 publisher -> {subscribers} subscribers)"),
        fields: Fields { topics, subscribers },
        channels,
        own_copies: false,
    };
    fanout::run(layout, &args.fanout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_urls_keep_the_base_path() {
        let bare = Target::parse("ws://127.0.0.1:9").unwrap();
        assert_eq!(at(&bare, "/sub?topic=t0").path, "/sub?topic=t0");
        let prefixed = Target::parse("ws://127.0.0.1:9/app/").unwrap();
        assert_eq!(at(&prefixed, "/pub?topic=t3").path, "/app/pub?topic=t3");
    }
}
