//! A minimal WebSocket client (RFC 6455) over a tokio `TcpStream`, or TLS over one for
//! `wss://`: the HTTP upgrade, masked frame encoding and an incremental frame parser for
//! the server's frames, with permessage-deflate (RFC 7692, `deflate.rs`) when asked for.
//!
//! Hand-written instead of tokio-tungstenite so that the load generator does as little
//! work per message as possible: frames are encoded straight into a batch buffer that
//! is written with one system call, and replies are parsed in place from the read buffer.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::deflate;
use crate::readbuf::ReadBuf;

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The RSV1 bit: the message is compressed (permessage-deflate).
const RSV1: u8 = 0x40;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A parsed `ws://host:port/path` or `wss://host:port/path` address (`http://` or
/// `https://` for the `http` mode), resolved once up front (so that no DNS look-up,
/// which tokio would run on a helper thread, happens under load).
#[derive(Clone, Debug)]
pub struct Target {
    /// `ws`, `wss`, `http` or `https`: what `url` shows.
    pub scheme: &'static str,
    pub addr: SocketAddr,
    pub host_header: String,
    pub path: String,
    /// `wss://`: TLS under the WebSocket.
    pub tls: bool,
    /// The host without its port (nor an IPv6 address's brackets): the name the
    /// server's certificate must hold.
    pub server_name: String,
}

impl Target {
    /// A WebSocket address: `ws://` or `wss://`.
    pub fn parse(url: &str) -> Result<Target, String> {
        Target::parse_schemes(url, ["ws", "wss"])
    }

    /// An HTTP address: `http://` or `https://`.
    pub fn parse_http(url: &str) -> Result<Target, String> {
        Target::parse_schemes(url, ["http", "https"])
    }

    /// `url` with the scheme `plain` (port 80 by default) or `secure` (TLS, 443).
    fn parse_schemes(url: &str, [plain, secure]: [&'static str; 2]) -> Result<Target, String> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) if s == plain => (plain, rest),
            Some((s, rest)) if s == secure => (secure, rest),
            _ => return Err(format!("url must start with {plain}:// or {secure}:// (got {url:?})")),
        };
        let (tls, default_port) = if scheme == secure { (true, 443) } else { (false, 80) };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("url has no host: {url:?}"));
        }
        let (host, with_port) = match authority.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() && (!h.starts_with('[') || h.ends_with(']')) => {
                (h, authority.to_string())
            }
            _ => (authority, format!("{authority}:{default_port}")),
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority} resolves to nothing"))?;
        let server_name = host.trim_start_matches('[').trim_end_matches(']').to_string();
        Ok(Target {
            scheme,
            addr,
            host_header: authority.to_string(),
            path: path.to_string(),
            tls,
            server_name,
        })
    }

    /// The address as given: `ws(s)://host:port/path` (or `http(s)://...`).
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host_header, self.path)
    }
}

/// What every connection of the run does besides its URL: the certificate authorities
/// trusted for wss:// (`--ca-file`), and whether permessage-deflate is asked for
/// (`--compression`). Set once, in `main`, before any connection is made.
pub struct ClientOptions {
    tls: Option<TlsConnector>,
    compression: bool,
}

static OPTIONS: OnceLock<ClientOptions> = OnceLock::new();

impl ClientOptions {
    pub fn new(ca_file: Option<&Path>, compression: bool) -> Result<ClientOptions, String> {
        let tls = match ca_file {
            None => None,
            Some(path) => Some(TlsConnector::from(Arc::new(tls_config(path)?))),
        };
        Ok(ClientOptions { tls, compression })
    }

    /// Makes these the options of every connection. Only the first call counts.
    pub fn install(self) {
        let _ = OPTIONS.set(self);
    }

    fn get() -> &'static ClientOptions {
        OPTIONS.get_or_init(|| ClientOptions { tls: None, compression: false })
    }
}

/// A TLS client configuration trusting the certificates of the PEM file `ca_file`,
/// with ring as its crypto provider and TLS 1.2 and 1.3. Session resumption is off:
/// every connection does a full handshake, as a new client does, which is what the
/// connection-rate runs are to measure.
fn tls_config(ca_file: &Path) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("cannot read --ca-file {}: {e}", ca_file.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("bad certificate in {}: {e}", ca_file.display()))?;
        roots.add(cert).map_err(|e| format!("unusable certificate in {}: {e}", ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("no certificate in --ca-file {}", ca_file.display()));
    }
    // ring offers no post-quantum key exchange (hence rustls's deprecation note); its
    // X25519 and P-256, which every server here takes, spare the aws-lc-rs C build.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    // The key share goes to the first group, which the server then takes. rustls's ring
    // list starts with P-384, whose generic arithmetic in ring costs each side more than
    // a millisecond per handshake; browsers start with X25519, and so does this client.
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    provider.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    let provider = Arc::new(provider);
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// A connection's byte stream: plain TCP for ws://, TLS over TCP for wss://.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// Reads what is there (0 at the end of the stream). Over TLS, a TCP end without
    /// TLS's close_notify counts as an end too: servers that close right after their
    /// close frame do not all send one, and the WebSocket close handshake already said
    /// that the stream is complete.
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => match s.read(buf).await {
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }

    /// Writes all of `data` and, over TLS, flushes the records it made out to the socket.
    pub async fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(data).await,
            Stream::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
        }
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

/// Connects: TCP (Nagle off), then TLS for wss:// and https://.
pub async fn open(target: &Target) -> Result<Stream, String> {
    let tcp = TcpStream::connect(target.addr).await.map_err(|e| format!("connect {}: {e}", target.addr))?;
    tcp.set_nodelay(true).map_err(|e| format!("set_nodelay: {e}"))?;
    if !target.tls {
        return Ok(Stream::Plain(tcp));
    }
    let Some(connector) = &ClientOptions::get().tls else {
        return Err(format!(
            "a {}:// URL needs --ca-file PEM (the certificate authority to trust)",
            target.scheme
        ));
    };
    let name = ServerName::try_from(target.server_name.clone())
        .map_err(|e| format!("{:?} is not a server name: {e}", target.server_name))?;
    let tls = connector.connect(name, tcp).await.map_err(|e| format!("TLS handshake: {e}"))?;
    Ok(Stream::Tls(Box::new(tls)))
}

/// Connects (`open`) and performs the upgrade, offering permessage-deflate if
/// `--compression` asked for it. Returns the stream and a reader that already holds
/// whatever the server sent after its response head.
pub async fn connect(
    target: &Target,
    rng: &mut Rng,
    read_capacity: usize,
) -> Result<(Stream, Reader), String> {
    let options = ClientOptions::get();
    let mut stream = open(target).await?;
    let mut key_bytes = [0u8; 16];
    key_bytes[..8].copy_from_slice(&rng.next().to_le_bytes());
    key_bytes[8..].copy_from_slice(&rng.next().to_le_bytes());
    let key = BASE64.encode(key_bytes);
    let extensions = if options.compression {
        format!("Sec-WebSocket-Extensions: {}\r\n", deflate::OFFER)
    } else {
        String::new()
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n",
        target.path, target.host_header, key
    );
    stream.send(request.as_bytes()).await.map_err(|e| format!("send upgrade: {e}"))?;

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
    let headers: Vec<(&str, &str)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).collect();
    let expected = accept_key(&key);
    let accept =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-accept")).map(|(_, v)| *v);
    if accept != Some(expected.as_str()) {
        return Err(format!("bad Sec-WebSocket-Accept: {accept:?}, expected {expected}"));
    }
    let answer: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|(_, v)| *v)
        .collect();
    let answer = (!answer.is_empty()).then(|| answer.join(", "));
    deflate::check_answer(answer.as_deref(), options.compression)?;
    let mut reader = Reader::new(read_capacity);
    reader.deflate = options.compression;
    reader.push(&head[end..]);
    Ok((stream, reader))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Appends one masked client frame (FIN set) to `out`, uncompressed.
#[inline]
pub fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8], rng: &mut Rng) {
    encode_frame(out, 0x80 | opcode, payload, rng);
}

thread_local! {
    static COMPRESSED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Appends one data message as a single masked frame: compressed (RSV1 set) when the
/// connection negotiated permessage-deflate (`deflate`, from `Reader::deflate`), as
/// `encode` does otherwise.
#[inline]
pub fn encode_message(out: &mut Vec<u8>, opcode: u8, payload: &[u8], rng: &mut Rng, deflate: bool) {
    if !deflate {
        return encode(out, opcode, payload, rng);
    }
    COMPRESSED.with(|z| {
        let mut z = z.borrow_mut();
        z.clear();
        deflate::compress(payload, &mut z);
        encode_frame(out, 0x80 | RSV1 | opcode, &z, rng);
    })
}

/// Appends one masked frame whose first byte is `b0`.
#[inline]
fn encode_frame(out: &mut Vec<u8>, b0: u8, payload: &[u8], rng: &mut Rng) {
    let len = payload.len();
    out.push(b0);
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

/// Buffers bytes from the socket and cuts them into messages, reassembling fragments
/// and inflating compressed messages.
pub struct Reader {
    bytes: ReadBuf,
    frag: Vec<u8>,
    frag_op: Option<u8>,
    /// The fragmented message under way is compressed.
    frag_compressed: bool,
    /// permessage-deflate was negotiated: data messages may come compressed (RSV1).
    deflate: bool,
    /// The last compressed message, inflated.
    inflated: Vec<u8>,
}

impl Reader {
    pub fn new(capacity: usize) -> Reader {
        Reader {
            bytes: ReadBuf::new(capacity),
            frag: Vec::new(),
            frag_op: None,
            frag_compressed: false,
            deflate: false,
            inflated: Vec::new(),
        }
    }

    /// permessage-deflate was negotiated on this connection: data messages sent on it
    /// are to be compressed (`encode_message`), and those received may be.
    pub fn deflate(&self) -> bool {
        self.deflate
    }

    fn push(&mut self, data: &[u8]) {
        self.bytes.push(data);
    }

    /// Reads once from the stream into the buffer. Returns the bytes read (0 on EOF).
    pub async fn fill(&mut self, stream: &mut Stream) -> std::io::Result<usize> {
        self.bytes.fill(stream).await
    }

    /// The next complete message already buffered, if any, inflated if it came
    /// compressed. Errors on a protocol violation by the server (masked frame, reserved
    /// bits, bad fragmentation, a compressed message without permessage-deflate).
    pub fn next(&mut self) -> Result<Option<Message<'_>>, String> {
        let Some((opcode, found)) = self.next_found()? else {
            return Ok(None);
        };
        let data = match found {
            Found::Buffered(range) => self.bytes.taken(range),
            Found::Inflated => &self.inflated,
            Found::Fragments => &self.frag,
        };
        Ok(Some(Message { opcode, data }))
    }

    /// `next`'s work: where the next message's bytes are (a borrow of them, returned
    /// from inside the loop, would keep the buffer borrowed for its next rounds).
    fn next_found(&mut self) -> Result<Option<(u8, Found)>, String> {
        loop {
            let avail = self.bytes.data();
            if avail.len() < 2 {
                return Ok(None);
            }
            let b0 = avail[0];
            let b1 = avail[1];
            let compressed = b0 & RSV1 != 0;
            if b0 & 0x30 != 0 || (compressed && !self.deflate) {
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
                self.bytes.expect(hlen + len);
                return Ok(None);
            }
            let frame = self.bytes.take(hlen + len);
            let at = frame.start + hlen..frame.end;
            let payload = self.bytes.taken(at.clone());
            match opcode {
                OP_CLOSE | OP_PING | OP_PONG => {
                    if !fin {
                        return Err("fragmented control frame".into());
                    }
                    if compressed {
                        return Err("compressed control frame".into());
                    }
                    return Ok(Some((opcode, Found::Buffered(at))));
                }
                OP_TEXT | OP_BINARY => {
                    if self.frag_op.is_some() {
                        return Err("new data frame inside a fragmented message".into());
                    }
                    if fin && compressed {
                        deflate::decompress(payload, &mut self.inflated)?;
                        return Ok(Some((opcode, Found::Inflated)));
                    }
                    if fin {
                        return Ok(Some((opcode, Found::Buffered(at))));
                    }
                    self.frag_op = Some(opcode);
                    self.frag_compressed = compressed;
                    self.frag.clear();
                    self.frag.extend_from_slice(payload);
                }
                OP_CONT => {
                    let Some(op) = self.frag_op else {
                        return Err("continuation frame without a message".into());
                    };
                    if compressed {
                        return Err("RSV1 set on a continuation frame".into());
                    }
                    self.frag.extend_from_slice(payload);
                    if fin {
                        self.frag_op = None;
                        if self.frag_compressed {
                            deflate::decompress(&self.frag, &mut self.inflated)?;
                            return Ok(Some((op, Found::Inflated)));
                        }
                        return Ok(Some((op, Found::Fragments)));
                    }
                }
                other => return Err(format!("unknown opcode {other:#x}")),
            }
        }
    }
}

/// Where a message that `Reader::next_found` found is.
enum Found {
    /// In the read buffer, at this range.
    Buffered(std::ops::Range<usize>),
    /// Inflated, in `Reader::inflated`.
    Inflated,
    /// Reassembled from fragments, in `Reader::frag`.
    Fragments,
}

/// Sends a close frame (if `send` is set) and waits up to `wait` for the server's close
/// frame or the end of the stream. Answers pings meanwhile and ignores data.
/// Returns the server's close code (None if the stream ended without one).
pub async fn close(
    stream: &mut Stream,
    reader: &mut Reader,
    rng: &mut Rng,
    send: bool,
    wait: Duration,
) -> Result<Option<u16>, String> {
    let mut out = Vec::with_capacity(16);
    if send {
        encode_close(&mut out, rng);
        stream.send(&out).await.map_err(|e| format!("send close: {e}"))?;
    }
    let fut = async {
        loop {
            while let Some(m) = reader.next()? {
                if m.opcode == OP_CLOSE {
                    let code = (m.data.len() >= 2).then(|| u16::from_be_bytes([m.data[0], m.data[1]]));
                    if !send {
                        let mut out = Vec::with_capacity(16);
                        encode(&mut out, OP_CLOSE, &code.unwrap_or(1000).to_be_bytes(), rng);
                        let _ = stream.send(&out).await;
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

    /// Every message `r` reads from `stream` fed to it `piece` bytes at a time.
    fn read_in_pieces(r: &mut Reader, stream: &[u8], piece: usize) -> Vec<(u8, Vec<u8>)> {
        let mut got = Vec::new();
        for chunk in stream.chunks(piece) {
            r.push(chunk);
            while let Some(m) = r.next().unwrap() {
                got.push((m.opcode, m.data.to_vec()));
            }
        }
        got
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
        let got = read_in_pieces(&mut Reader::new(64), &stream, 37);
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
        assert!(!t.tls);
    }

    #[test]
    fn target_parses_wss_urls() {
        let t = Target::parse("wss://127.0.0.1:9443/ws").unwrap();
        assert!(t.tls);
        assert_eq!(t.addr, "127.0.0.1:9443".parse().unwrap());
        assert_eq!((t.server_name.as_str(), t.path.as_str()), ("127.0.0.1", "/ws"));
        assert_eq!(t.url(), "wss://127.0.0.1:9443/ws");
        let t = Target::parse("wss://[::1]:9443").unwrap();
        assert_eq!((t.server_name.as_str(), t.path.as_str()), ("::1", "/"));
        let t = Target::parse("wss://127.0.0.1/x").unwrap();
        assert_eq!(t.addr.port(), 443);
        assert!(!Target::parse("ws://localhost:9/").unwrap().tls);
        assert_eq!(Target::parse("ws://127.0.0.1:9/a").unwrap().url(), "ws://127.0.0.1:9/a");
    }

    #[test]
    fn http_targets_take_http_schemes_only() {
        let t = Target::parse_http("http://127.0.0.1:8080/static/file.bin").unwrap();
        assert_eq!((t.addr.port(), t.path.as_str(), t.tls), (8080, "/static/file.bin", false));
        assert_eq!(t.url(), "http://127.0.0.1:8080/static/file.bin");
        let t = Target::parse_http("https://127.0.0.1").unwrap();
        assert_eq!((t.addr.port(), t.path.as_str(), t.tls), (443, "/", true));
        assert!(Target::parse_http("ws://127.0.0.1:9/").is_err());
        assert!(Target::parse_http("httpx://127.0.0.1:9/").is_err());
        assert!(Target::parse("https://127.0.0.1:9/").is_err());
    }

    fn compressed_server_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = server_frame(fin, op, payload);
        f[0] |= RSV1;
        f
    }

    #[test]
    fn reader_inflates_compressed_messages() {
        let text: Vec<u8> = (0..5000).map(|i| b"{\"k\": 12, \"word\": \"alpha\"}"[i % 26]).collect();
        let mut z = Vec::new();
        deflate::compress(&text, &mut z);
        let (a, b) = z.split_at(z.len() / 2);
        let mut stream = Vec::new();
        stream.extend(compressed_server_frame(true, OP_TEXT, &z));
        stream.extend(server_frame(true, OP_TEXT, b"plain"));
        stream.extend(compressed_server_frame(false, OP_BINARY, a));
        stream.extend(server_frame(true, OP_PING, b"p"));
        stream.extend(server_frame(true, OP_CONT, b));
        // RFC 7692, 7.2.3.1: "Hello".
        stream.extend(compressed_server_frame(true, OP_TEXT, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]));
        let mut r = Reader::new(64);
        r.deflate = true;
        let got = read_in_pieces(&mut r, &stream, 29);
        let want: Vec<(u8, Vec<u8>)> = vec![
            (OP_TEXT, text.clone()),
            (OP_TEXT, b"plain".to_vec()),
            (OP_PING, b"p".to_vec()),
            (OP_BINARY, text),
            (OP_TEXT, b"Hello".to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn reader_rejects_rsv1_where_not_allowed() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        // Not negotiated.
        let mut r = Reader::new(64);
        r.push(&compressed_server_frame(true, OP_TEXT, &hello));
        assert!(r.next().is_err());
        // On a control frame, or a continuation.
        let mut r = Reader::new(64);
        r.deflate = true;
        r.push(&compressed_server_frame(true, OP_PING, b"p"));
        assert!(r.next().is_err());
        let mut r = Reader::new(64);
        r.deflate = true;
        r.push(&compressed_server_frame(false, OP_TEXT, &hello[..3]));
        r.push(&compressed_server_frame(true, OP_CONT, &hello[3..]));
        assert!(r.next().is_err());
        // RSV2 and RSV3 are never allowed.
        let mut r = Reader::new(64);
        r.deflate = true;
        r.push(&[0x81 | 0x20, 0x01, b'a']);
        assert!(r.next().is_err());
    }

    #[test]
    fn encode_message_compresses_only_when_negotiated() {
        let mut rng = Rng::new(3);
        let payload: Vec<u8> = (0..4096).map(|i| b"abc, \"def\": 123"[i % 15]).collect();
        let mut out = Vec::new();
        encode_message(&mut out, OP_TEXT, &payload, &mut rng, false);
        assert_eq!(out[0], 0x80 | OP_TEXT);
        assert_eq!(unmask(&out), (OP_TEXT, payload.clone()));
        out.clear();
        encode_message(&mut out, OP_TEXT, &payload, &mut rng, true);
        assert_eq!(out[0], 0x80 | RSV1 | OP_TEXT);
        let (op, z) = unmask(&out);
        assert!(op == OP_TEXT && z.len() < payload.len() / 4);
        let mut back = Vec::new();
        deflate::decompress(&z, &mut back).unwrap();
        assert_eq!(back, payload);
    }
}
