//! max_message_size and max_frame_size at their boundaries: both limits are inclusive,
//! the frame limit follows the message limit unless it is set, and a message of the
//! limit arrives whether it comes in one frame or in fragments.

mod common;

use common::*;
use roost::Config;
use tokio::io::AsyncWriteExt;

/// The message limit of these tests; the frame limit is left to follow it.
const LIMIT: usize = 256 << 10;

/// The client's frames of one binary message of `len` bytes, in `pieces` fragments.
fn message_frames(len: usize, pieces: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let chunk = len.div_ceil(pieces).max(1);
    let mut bytes = Vec::new();
    let chunks: Vec<&[u8]> = payload.chunks(chunk).collect();
    for (i, part) in chunks.iter().enumerate() {
        let opcode = if i == 0 { OP_BINARY } else { OP_CONT };
        bytes.extend(client_frame(i + 1 == chunks.len(), opcode, part));
    }
    bytes
}

/// Sends one message of `len` bytes in `pieces` frames; returns Ok(echoed length) when
/// the server delivered it, Err((client's close code, event's close code)) when it
/// closed the connection instead.
fn send_message(config: Config, len: usize, pieces: usize) -> Result<usize, (u16, u16)> {
    let (h, mut events) = Harness::echo(config, &["/ws"]);
    let port = h.port;
    run(20, async move {
        let mut s = raw_upgrade(port, "/ws").await;
        let id = events.connect().await.id;
        s.write_all(&message_frames(len, pieces)).await.unwrap();
        match read_frame(&mut s).await.unwrap().expect("a frame") {
            f if f.opcode == OP_CLOSE => {
                let client = u16::from_be_bytes([f.payload[0], f.payload[1]]);
                Err((client, events.disconnect(id).await.0))
            }
            first => {
                // The echo may come back in several frames only if the server fragments;
                // it does not: one frame, the whole message.
                assert_eq!(first.opcode, OP_BINARY);
                let expected: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                assert!(first.payload == expected, "echo differs from the message");
                Ok(first.payload.len())
            }
        }
    })
}

fn limited(max_message_size: usize) -> Config {
    Config { max_message_size, ..test_config() }
}

#[test]
fn a_message_of_the_limit_arrives_in_one_frame_and_one_more_byte_closes_1009() {
    assert_eq!(send_message(limited(LIMIT), LIMIT - 1, 1), Ok(LIMIT - 1));
    assert_eq!(send_message(limited(LIMIT), LIMIT, 1), Ok(LIMIT));
    assert_eq!(send_message(limited(LIMIT), LIMIT + 1, 1), Err((1009, 1009)));
}

#[test]
fn a_message_of_the_limit_arrives_in_fragments_and_one_more_byte_closes_1009() {
    assert_eq!(send_message(limited(LIMIT), LIMIT - 1, 5), Ok(LIMIT - 1));
    assert_eq!(send_message(limited(LIMIT), LIMIT, 5), Ok(LIMIT));
    assert_eq!(send_message(limited(LIMIT), LIMIT + 1, 5), Err((1009, 1009)));
}

#[test]
fn raising_only_the_message_limit_past_the_default_frame_size_admits_one_big_frame() {
    // The default message limit is 1 MiB; a frame of more than that arrives once only
    // the message limit is raised.
    let limit = (1 << 20) + 1024;
    assert_eq!(send_message(limited(limit), limit, 1), Ok(limit));
    assert_eq!(send_message(limited(limit), limit + 1, 1), Err((1009, 1009)));
}

#[test]
fn an_explicit_frame_limit_is_inclusive_and_bounds_frames_not_messages() {
    let frame_limit = 64 << 10;
    let config = || Config { max_frame_size: Some(frame_limit), ..limited(LIMIT) };
    assert_eq!(send_message(config(), frame_limit, 1), Ok(frame_limit));
    assert_eq!(send_message(config(), frame_limit + 1, 1), Err((1009, 1009)));
    // A whole message of the message limit, in frames of at most the frame limit.
    assert_eq!(send_message(config(), LIMIT, LIMIT / frame_limit), Ok(LIMIT));
    assert_eq!(send_message(config(), LIMIT + 1, LIMIT / frame_limit + 1), Err((1009, 1009)));
}

#[test]
fn the_defaults_let_the_frame_limit_follow_the_message_limit() {
    let config = Config::default();
    assert_eq!(config.max_frame_size, None);
    assert_eq!(config.frame_limit(), config.max_message_size);
    let lowered = Config { max_frame_size: Some(10), ..Config::default() };
    assert_eq!(lowered.frame_limit(), 10);
}
