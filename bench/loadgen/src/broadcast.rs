//! `broadcast`: one sender publishes messages to a broadcast route; `receivers` other
//! clients each must get every one of them, in order, and the sender gets its own
//! copies too. Reports deliveries per second, delivery latency and what was lost. How
//! much and how fast it sends, and how the start is synchronised: see `fanout.rs`.

use serde::Serialize;

use crate::cli::positive_whole;
use crate::fanout::{self, ChannelSpec, FanoutArgs, Layout};
use crate::ws::Target;
use crate::Outcome;

#[derive(clap::Args, Debug)]
pub struct BroadcastArgs {
    /// The server's broadcast route
    #[arg(long, value_name = "URL", value_parser = Target::parse)]
    pub url: Target,
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
    let target = &args.url;
    let receivers = args.receivers as usize;
    let layout = Layout {
        mode: "broadcast",
        url: format!("ws://{}{}", target.host_header, target.path),
        shape: format!("1 sender -> {receivers} receivers"),
        fields: Fields { receivers },
        channels: vec![ChannelSpec { sender: target.clone(), receiver: target.clone(), receivers }],
        own_copies: true,
    };
    fanout::run(layout, &args.fanout).await
}
