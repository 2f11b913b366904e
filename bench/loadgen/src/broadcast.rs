//! `broadcast`: one sender publishes messages to a broadcast route; `receivers` other
//! clients each must get every one of them, in order, and the sender gets its own
//! copies too. Reports deliveries per second, delivery latency and what was lost. How
//! much and how fast it sends, and how the start is synchronised: see `fanout.rs`.
//!
//! `--url` repeated spreads the receivers over several servers, in turn (the sender
//! connects to the first): a broadcast that must cross processes or hosts, as through
//! a backplane.

use serde::Serialize;

use crate::cli::positive_whole;
use crate::fanout::{self, ChannelSpec, FanoutArgs, Layout};
use crate::ws::Target;
use crate::Outcome;

#[derive(clap::Args, Debug)]
pub struct BroadcastArgs {
    /// The server's broadcast route; repeated, the receivers are spread over the URLs in
    /// turn and the sender connects to the first
    #[arg(long, value_name = "URL", value_parser = Target::parse, required = true)]
    pub url: Vec<Target>,
    /// Receiving connections, besides the sender
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = positive_whole)]
    pub receivers: u64,
    #[command(flatten)]
    pub fanout: FanoutArgs,
}

/// The RESULT fields of this mode, before those of every fan-out mode.
#[derive(Serialize)]
struct Fields {
    receivers: usize,
}

pub async fn run(args: &BroadcastArgs) -> Result<Outcome, String> {
    let targets = &args.url;
    let receivers = args.receivers as usize;
    let urls: Vec<String> = targets.iter().map(Target::url).collect();
    let over = match targets.len() {
        1 => String::new(),
        n => format!(" over {n} servers"),
    };
    let layout = Layout {
        mode: "broadcast",
        url: urls.join(" "),
        shape: format!("1 sender -> {receivers} receivers{over}"),
        fields: Fields { receivers },
        channels: vec![ChannelSpec { sender: targets[0].clone(), receivers_at: targets.clone(), receivers }],
        own_copies: true,
    };
    fanout::run(layout, &args.fanout).await
}
