//! A minimal WebSocket client (RFC 6455) over a tokio `TcpStream`: the HTTP upgrade,
//! masked frame encoding and an incremental frame parser for the server's frames.
//!
//! Hand-written instead of tokio-tungstenite so that the load generator does as little
//! work per message as possible: frames are encoded straight into a batch buffer that
//! is written with one system call, and replies are parsed in place from the read buffer.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A parsed `ws://host:port/path` address, resolved once up front (so that no DNS
/// look-up, which tokio would run on a helper thread, happens under load).
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host_header: String,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest =
            url.strip_prefix("ws://").ok_or_else(|| format!("url must start with ws:// (got {url:?})"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("url has no host: {url:?}"));
        }
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority} resolves to nothing"))?;
        Ok(Target { addr, host_header: authority.to_string(), path: path.to_string() })
    }
}

/// xorshift64*: cheap randomness for mask keys and handshake keys. Not cryptographic,
/// which is fine for a benchmark talking to its own server.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut r = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
        if r.0 == 0 {
            r.0 = 1;
        }
        r.next();
        r
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn accept_key(key: &str) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    BASE64.encode(h.digest().bytes())
}

/// Connects and performs the upgrade. Returns the stream and a reader that already
/// holds whatever the server sent after its response head.
pub async fn connect(
    target: &Target,
    rng: &mut Rng,
    read_capacity: usize,
) -> Result<(TcpStream, Reader), String> {
    let mut stream =
        TcpStream::connect(target.addr).await.map_err(|e| format!("connect {}: {e}", target.addr))?;
    stream.set_nodelay(true).map_err(|e| format!("set_nodelay: {e}"))?;
    let mut key_bytes = [0u8; 16];
    key_bytes[..8].copy_from_slice(&rng.next().to_le_bytes());
    key_bytes[8..].copy_from_slice(&rng.next().to_le_bytes());
    let key = BASE64.encode(key_bytes);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        target.path, target.host_header, key
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("send upgrade: {e}"))?;

    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = stream.read(&mut chunk).await.map_err(|e| format!("read upgrade response: {e}"))?;
        if n == 0 {
            return Err("server closed during the upgrade".into());
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = find(&head, b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 16 * 1024 {
            return Err("upgrade response head too long".into());
        }
    };
    let text = String::from_utf8_lossy(&head[..end]);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("upgrade refused: {status:?}"));
    }
    let expected = accept_key(&key);
    let accept = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|(_, v)| v.trim().to_string());
    if accept.as_deref() != Some(expected.as_str()) {
        return Err(format!("bad Sec-WebSocket-Accept: {accept:?}, expected {expected}"));
    }
    let mut reader = Reader::new(read_capacity);
    reader.push(&head[end..]);
    Ok((stream, reader))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Appends one masked client frame (FIN set) to `out`.
#[inline]
pub fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8], rng: &mut Rng) {
    let len = payload.len();
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let key = (rng.next() as u32).to_ne_bytes();
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    let body = &mut out[start..];
    let key64 = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = body.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().unwrap()) ^ key64;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    let done = len - chunks.into_remainder().len();
    for (i, b) in body[done..].iter_mut().enumerate() {
        *b ^= key[(done + i) & 3];
    }
}

/// A close frame with status 1000.
pub fn encode_close(out: &mut Vec<u8>, rng: &mut Rng) {
    encode(out, OP_CLOSE, &1000u16.to_be_bytes(), rng);
}

/// One complete message (or control frame) from the server.
pub struct Message<'a> {
    pub opcode: u8,
    pub data: &'a [u8],
}

/// Buffers bytes from the socket and cuts them into messages, reassembling fragments.
pub struct Reader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    frag: Vec<u8>,
    frag_op: Option<u8>,
}

impl Reader {
    pub fn new(capacity: usize) -> Reader {
        Reader { buf: vec![0; capacity.max(64)], start: 0, end: 0, frag: Vec::new(), frag_op: None }
    }

    fn push(&mut self, data: &[u8]) {
        self.reserve(data.len());
        self.buf[self.end..self.end + data.len()].copy_from_slice(data);
        self.end += data.len();
    }

    /// Makes room for at least `more` bytes after `end`.
    fn reserve(&mut self, more: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end >= more {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < more {
            let want = (self.end + more).next_power_of_two();
            self.buf.resize(want, 0);
        }
    }

    /// Reads once from the socket into the buffer. Returns the bytes read (0 on EOF).
    pub async fn fill<R: AsyncReadExt + Unpin>(&mut self, stream: &mut R) -> std::io::Result<usize> {
        // Keep at least a quarter of the buffer (and never less than 256 bytes) free.
        let free_wanted = (self.buf.len() / 4).max(256);
        self.reserve(free_wanted);
        let n = stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next complete message already buffered, if any. Errors on a protocol
    /// violation by the server (masked frame, reserved bits, bad fragmentation).
    pub fn next(&mut self) -> Result<Option<Message<'_>>, String> {
        loop {
            let avail = &self.buf[self.start..self.end];
            if avail.len() < 2 {
                return Ok(None);
            }
            let b0 = avail[0];
            let b1 = avail[1];
            if b0 & 0x70 != 0 {
                return Err(format!("reserved bits set in frame header {b0:#04x}"));
            }
            if b1 & 0x80 != 0 {
                return Err("server sent a masked frame".into());
            }
            let fin = b0 & 0x80 != 0;
            let opcode = b0 & 0x0F;
            let (len, hlen) = match b1 & 0x7F {
                126 => {
                    if avail.len() < 4 {
                        return Ok(None);
                    }
                    (u16::from_be_bytes([avail[2], avail[3]]) as usize, 4)
                }
                127 => {
                    if avail.len() < 10 {
                        return Ok(None);
                    }
                    (u64::from_be_bytes(avail[2..10].try_into().unwrap()) as usize, 10)
                }
                n => (n as usize, 2),
            };
            if avail.len() < hlen + len {
                // Make sure the whole frame will fit in the buffer.
                let need = hlen + len;
                if self.buf.len() - self.start < need {
                    self.reserve(need - (self.end - self.start));
                }
                return Ok(None);
            }
            let p0 = self.start + hlen;
            self.start += hlen + len;
            match opcode {
                OP_CLOSE | OP_PING | OP_PONG => {
                    if !fin {
                        return Err("fragmented control frame".into());
                    }
                    return Ok(Some(Message { opcode, data: &self.buf[p0..p0 + len] }));
                }
                OP_TEXT | OP_BINARY => {
                    if self.frag_op.is_some() {
                        return Err("new data frame inside a fragmented message".into());
                    }
                    if fin {
                        return Ok(Some(Message { opcode, data: &self.buf[p0..p0 + len] }));
                    }
                    self.frag_op = Some(opcode);
                    self.frag.clear();
                    self.frag.extend_from_slice(&self.buf[p0..p0 + len]);
                }
                OP_CONT => {
                    let Some(op) = self.frag_op else {
                        return Err("continuation frame without a message".into());
                    };
                    self.frag.extend_from_slice(&self.buf[p0..p0 + len]);
                    if fin {
                        self.frag_op = None;
                        return Ok(Some(Message { opcode: op, data: &self.frag }));
                    }
                }
                other => return Err(format!("unknown opcode {other:#x}")),
            }
        }
    }
}

/// Sends a close frame (if `send` is set) and waits up to `wait` for the server's close
/// frame or the end of the stream. Answers pings meanwhile and ignores data.
/// Returns the server's close code (None if the stream ended without one).
pub async fn close(
    stream: &mut TcpStream,
    reader: &mut Reader,
    rng: &mut Rng,
    send: bool,
    wait: Duration,
) -> Result<Option<u16>, String> {
    let mut out = Vec::with_capacity(16);
    if send {
        encode_close(&mut out, rng);
        stream.write_all(&out).await.map_err(|e| format!("send close: {e}"))?;
    }
    let fut = async {
        loop {
            while let Some(m) = reader.next()? {
                if m.opcode == OP_CLOSE {
                    let code = (m.data.len() >= 2).then(|| u16::from_be_bytes([m.data[0], m.data[1]]));
                    if !send {
                        let mut out = Vec::with_capacity(16);
                        encode(&mut out, OP_CLOSE, &code.unwrap_or(1000).to_be_bytes(), rng);
                        let _ = stream.write_all(&out).await;
                    }
                    return Ok(code);
                }
            }
            match reader.fill(stream).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) => return Err(format!("read while closing: {e}")),
            }
        }
    };
    match tokio::time::timeout(wait, fut).await {
        Ok(r) => r,
        Err(_) => Err("timed out waiting for the server's close frame".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    /// Unmasks a client frame the way a server would.
    fn unmask(frame: &[u8]) -> (u8, Vec<u8>) {
        let op = frame[0] & 0x0F;
        assert!(frame[0] & 0x80 != 0 && frame[1] & 0x80 != 0);
        let (len, mut i) = match frame[1] & 0x7F {
            126 => (u16::from_be_bytes([frame[2], frame[3]]) as usize, 4),
            127 => (u64::from_be_bytes(frame[2..10].try_into().unwrap()) as usize, 10),
            n => (n as usize, 2),
        };
        let key = [frame[i], frame[i + 1], frame[i + 2], frame[i + 3]];
        i += 4;
        assert_eq!(frame.len(), i + len);
        (op, frame[i..].iter().enumerate().map(|(j, b)| b ^ key[j & 3]).collect())
    }

    #[test]
    fn encode_masks_every_length() {
        let mut rng = Rng::new(7);
        for len in [0usize, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut out = Vec::new();
            encode(&mut out, OP_TEXT, &payload, &mut rng);
            assert_eq!(unmask(&out), (OP_TEXT, payload), "length {len}");
        }
    }

    fn server_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | op];
        if payload.len() < 126 {
            f.push(payload.len() as u8);
        } else if payload.len() <= 0xFFFF {
            f.push(126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        } else {
            f.push(127);
            f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn reader_parses_split_and_fragmented_frames() {
        let big = vec![b'z'; 100_000];
        let mut stream = Vec::new();
        stream.extend(server_frame(true, OP_TEXT, b"Echo: hi"));
        stream.extend(server_frame(false, OP_TEXT, b"frag"));
        stream.extend(server_frame(true, OP_PING, b"p"));
        stream.extend(server_frame(true, OP_CONT, b"mented"));
        stream.extend(server_frame(true, OP_BINARY, &big));
        stream.extend(server_frame(true, OP_CLOSE, &1001u16.to_be_bytes()));
        // Feed it one odd-sized piece at a time.
        let mut r = Reader::new(64);
        let mut got: Vec<(u8, Vec<u8>)> = Vec::new();
        for piece in stream.chunks(37) {
            r.push(piece);
            while let Some(m) = r.next().unwrap() {
                got.push((m.opcode, m.data.to_vec()));
            }
        }
        let want: Vec<(u8, Vec<u8>)> = vec![
            (OP_TEXT, b"Echo: hi".to_vec()),
            (OP_PING, b"p".to_vec()),
            (OP_TEXT, b"fragmented".to_vec()),
            (OP_BINARY, big),
            (OP_CLOSE, 1001u16.to_be_bytes().to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn reader_rejects_masked_server_frames() {
        let mut r = Reader::new(64);
        r.push(&[0x81, 0x81, 1, 2, 3, 4, b'a']);
        assert!(r.next().is_err());
    }

    #[test]
    fn target_parses_urls() {
        let t = Target::parse("ws://127.0.0.1:9001/chat?x=1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(t.path, "/chat?x=1");
        assert_eq!(t.host_header, "127.0.0.1:9001");
        assert!(Target::parse("http://127.0.0.1/").is_err());
    }
}
