//! Incoming frames: a client's bytes, as they come off the socket, parsed into whole
//! messages, pings, pongs and a close, checking every rule of RFC 6455 on the way.
//!
//! The reader keeps no buffer of raw bytes. It parses straight from the socket's read
//! burst and copies (unmasking) only payload, into the message being reassembled, so an
//! idle connection holds a few dozen bytes of parser state and nothing else. A header
//! is checked as soon as its first two bytes are in (reserved bits, opcode, mask,
//! control frame rules), and its length against the limits before a byte of its payload
//! is stored: a header announcing a huge frame allocates nothing. The message buffer
//! grows with what arrives, never past `max_message_size`. Text is checked as UTF-8 as
//! each piece arrives, so an invalid byte fails the connection at once rather than when
//! the message is complete.

use bytes::Bytes;

use crate::frames::{is_close_code, opcode};

/// Longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;
/// Longest payload of a control frame (RFC 6455 5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Something the peer sent, complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A data message, reassembled from its fragments; text is valid UTF-8.
    Message { binary: bool, data: Bytes },
    /// A ping: it is owed a pong with the same payload.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// A close frame: its code and reason, `None` when it carried no code.
    Close(Option<(u16, String)>),
}

/// A rule the peer broke: the connection is failed with this close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Violation {
    pub code: u16,
    pub reason: &'static str,
}

const fn protocol_error(reason: &'static str) -> Violation {
    Violation { code: 1002, reason }
}

const INVALID_UTF8: Violation = Violation { code: 1007, reason: "invalid UTF-8 in text message" };
const FRAME_TOO_BIG: Violation = Violation { code: 1009, reason: "frame too big" };
const MESSAGE_TOO_BIG: Violation = Violation { code: 1009, reason: "message too big" };

/// The size limits the reader enforces, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub max_frame: usize,
    pub max_message: usize,
}

/// The frame whose payload is being read.
#[derive(Debug)]
struct Frame {
    opcode: u8,
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes read so far (the mask's position).
    read: usize,
    /// Payload bytes still to come.
    remaining: usize,
}

/// A data message being reassembled.
#[derive(Debug)]
struct Message {
    binary: bool,
    data: Vec<u8>,
    /// Bytes of a text message's data known to be valid UTF-8 (what follows is at most
    /// the start of one character).
    checked: usize,
}

/// Parser state of one connection's incoming frames.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    header: [u8; MAX_HEADER],
    header_len: u8,
    frame: Option<Frame>,
    message: Option<Message>,
    /// Payload of the control frame being read.
    control: Vec<u8>,
}

impl FrameReader {
    /// Parses from `input` until something is complete or the input runs out. Returns
    /// how many bytes were used (the rest belongs to what follows) and what was
    /// completed, if anything. After a violation the reader must not be used again.
    pub(crate) fn read(
        &mut self,
        input: &[u8],
        limits: Limits,
    ) -> Result<(usize, Option<Incoming>), Violation> {
        let mut used = 0;
        loop {
            if self.frame.is_none() {
                used += self.read_header(&input[used..], limits)?;
                if self.frame.is_none() {
                    return Ok((used, None));
                }
            }
            used += self.read_payload(&input[used..], limits)?;
            if self.frame.as_ref().is_some_and(|f| f.remaining == 0) {
                if let Some(done) = self.end_frame()? {
                    return Ok((used, Some(done)));
                }
            }
            if used == input.len() {
                return Ok((used, None));
            }
        }
    }

    /// Copies header bytes from `input`, checking them as soon as they are in; once the
    /// header is whole, starts its frame. Returns the bytes used.
    fn read_header(&mut self, input: &[u8], limits: Limits) -> Result<usize, Violation> {
        let mut used = 0;
        loop {
            let have = self.header_len as usize;
            let need = if have < 2 { 2 } else { header_size(self.header[1]) };
            if have == need {
                break;
            }
            let n = (need - have).min(input.len() - used);
            if n == 0 {
                return Ok(used);
            }
            self.header[have..have + n].copy_from_slice(&input[used..used + n]);
            self.header_len += n as u8;
            used += n;
            if have < 2 && self.header_len >= 2 {
                self.check_first_bytes()?;
            }
        }
        self.start_frame(limits)?;
        Ok(used)
    }

    /// The rules the first two header bytes settle.
    fn check_first_bytes(&self) -> Result<(), Violation> {
        let [b0, b1, ..] = self.header;
        let (fin, code) = (b0 & 0x80 != 0, b0 & 0x0f);
        if b0 & 0x70 != 0 {
            return Err(protocol_error("reserved bits set without an extension that uses them"));
        }
        match code {
            opcode::CONTINUATION if self.message.is_none() => {
                return Err(protocol_error("continuation frame without a message to continue"))
            }
            opcode::TEXT | opcode::BINARY if self.message.is_some() => {
                return Err(protocol_error("new data frame inside a fragmented message"))
            }
            opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => {}
            opcode::CLOSE | opcode::PING | opcode::PONG => {
                if !fin {
                    return Err(protocol_error("fragmented control frame"));
                }
                if (b1 & 0x7f) as usize > MAX_CONTROL_PAYLOAD {
                    return Err(protocol_error("control frame payload over 125 bytes"));
                }
            }
            _ => return Err(protocol_error("reserved opcode")),
        }
        if b1 & 0x80 == 0 {
            return Err(protocol_error("client frame not masked"));
        }
        Ok(())
    }

    /// Checks the whole header's length against the limits and starts its frame.
    fn start_frame(&mut self, limits: Limits) -> Result<(), Violation> {
        let h = &self.header;
        let (len, mask_at) = match h[1] & 0x7f {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => (u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]), 10),
            short => (u64::from(short), 2),
        };
        if len >> 63 != 0 {
            return Err(protocol_error("frame length with its most significant bit set"));
        }
        let len = usize::try_from(len).map_err(|_| FRAME_TOO_BIG)?;
        if len > limits.max_frame {
            return Err(FRAME_TOO_BIG);
        }
        let code = h[0] & 0x0f;
        match (&mut self.message, code) {
            (Some(message), opcode::CONTINUATION) if message.data.len() + len > limits.max_message => {
                return Err(MESSAGE_TOO_BIG);
            }
            (None, opcode::TEXT | opcode::BINARY) => {
                if len > limits.max_message {
                    return Err(MESSAGE_TOO_BIG);
                }
                self.message = Some(Message { binary: code == opcode::BINARY, data: Vec::new(), checked: 0 });
            }
            _ => {}
        }
        let mask = [h[mask_at], h[mask_at + 1], h[mask_at + 2], h[mask_at + 3]];
        self.frame = Some(Frame { opcode: code, fin: h[0] & 0x80 != 0, mask, read: 0, remaining: len });
        self.header_len = 0;
        Ok(())
    }

    /// Unmasks what `input` holds of the frame's payload into the message or the
    /// control payload. Returns the bytes used.
    fn read_payload(&mut self, input: &[u8], limits: Limits) -> Result<usize, Violation> {
        let Some(frame) = &mut self.frame else { return Ok(0) };
        let n = frame.remaining.min(input.len());
        if n == 0 {
            return Ok(0);
        }
        let target = match &mut self.message {
            Some(message) if frame.opcode < opcode::CLOSE => {
                grow(&mut message.data, n, limits.max_message);
                &mut message.data
            }
            _ => &mut self.control,
        };
        let start = target.len();
        target.extend_from_slice(&input[..n]);
        unmask(&mut target[start..], frame.mask, frame.read);
        frame.read += n;
        frame.remaining -= n;
        if frame.opcode < opcode::CLOSE {
            if let Some(message) = &mut self.message {
                message.check_utf8()?;
            }
        }
        Ok(n)
    }

    /// Ends the frame whose payload is all in. Returns what it completed, if anything.
    fn end_frame(&mut self) -> Result<Option<Incoming>, Violation> {
        let Some(frame) = self.frame.take() else { return Ok(None) };
        match frame.opcode {
            opcode::PING => Ok(Some(Incoming::Ping(Bytes::from(std::mem::take(&mut self.control))))),
            opcode::PONG => {
                self.control = Vec::new();
                Ok(Some(Incoming::Pong))
            }
            opcode::CLOSE => parse_close(&std::mem::take(&mut self.control)).map(Some),
            _ if !frame.fin => Ok(None),
            _ => {
                let Some(message) = self.message.take() else { return Ok(None) };
                if !message.binary && message.checked != message.data.len() {
                    return Err(INVALID_UTF8);
                }
                Ok(Some(Incoming::Message { binary: message.binary, data: Bytes::from(message.data) }))
            }
        }
    }
}

impl Message {
    /// Checks the text received since the last check; an incomplete character at the end
    /// waits for the bytes that complete it.
    fn check_utf8(&mut self) -> Result<(), Violation> {
        if self.binary {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.checked..]) {
            Ok(_) => self.checked = self.data.len(),
            Err(e) if e.error_len().is_some() => return Err(INVALID_UTF8),
            Err(e) => self.checked += e.valid_up_to(),
        }
        Ok(())
    }
}

/// Size of the header whose second byte is `b1` (client frames carry a mask).
fn header_size(b1: u8) -> usize {
    let length = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + length + 4
}

/// Makes room for `more` bytes in `data`, doubling as a `Vec` does but never past
/// `limit` (the message limit, already checked to hold what is coming).
fn grow(data: &mut Vec<u8>, more: usize, limit: usize) {
    let need = data.len() + more;
    if need > data.capacity() {
        let target = need.max(data.capacity() * 2).min(limit.max(need));
        data.reserve_exact(target - data.len());
    }
}

/// The payload of a close frame: no code, or a code RFC 6455 lets an endpoint send and
/// a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Incoming, Violation> {
    match payload {
        [] => Ok(Incoming::Close(None)),
        [_] => Err(protocol_error("close frame with a one-byte payload")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_close_code(code) {
                return Err(protocol_error("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| INVALID_UTF8)?;
            Ok(Incoming::Close(Some((code, reason.to_owned()))))
        }
    }
}

/// XORs `data` with the frame's mask, `data` starting at payload position `offset`.
fn unmask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let key: [u8; 4] = std::array::from_fn(|i| mask[(offset + i) % 4]);
    let wide = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8])) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_frame: 1 << 20, max_message: 1 << 20 };
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A client frame: `first` is the first header byte (FIN, RSV, opcode).
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        out
    }

    const TEXT: u8 = 0x81;
    const BINARY: u8 = 0x82;

    /// Feeds `bytes` in pieces of `step`, collecting what comes out until a violation.
    fn feed(bytes: &[u8], step: usize, limits: Limits) -> (Vec<Incoming>, Option<Violation>) {
        let mut reader = FrameReader::default();
        let mut out = Vec::new();
        for piece in bytes.chunks(step) {
            let mut at = 0;
            while at < piece.len() {
                match reader.read(&piece[at..], limits) {
                    Ok((used, done)) => {
                        at += used;
                        out.extend(done);
                        if used == 0 {
                            break;
                        }
                    }
                    Err(violation) => return (out, Some(violation)),
                }
            }
        }
        (out, None)
    }

    fn all(bytes: &[u8]) -> (Vec<Incoming>, Option<Violation>) {
        feed(bytes, usize::MAX, LIMITS)
    }

    fn code(bytes: &[u8]) -> Option<u16> {
        all(bytes).1.map(|v| v.code)
    }

    fn text(s: &str) -> Incoming {
        Incoming::Message { binary: false, data: Bytes::copy_from_slice(s.as_bytes()) }
    }

    #[test]
    fn messages_come_out_whatever_the_pieces_the_bytes_arrive_in() {
        let mut bytes = frame(TEXT, b"hello");
        bytes.extend(frame(BINARY, &[7; 300]));
        bytes.extend(frame(BINARY, &vec![9; 70_000]));
        bytes.extend(frame(TEXT, b""));
        let expected = vec![
            text("hello"),
            Incoming::Message { binary: true, data: Bytes::from(vec![7; 300]) },
            Incoming::Message { binary: true, data: Bytes::from(vec![9; 70_000]) },
            text(""),
        ];
        for step in [1, 2, 3, 7, 13, 4096, usize::MAX] {
            assert_eq!(feed(&bytes, step, LIMITS), (expected.clone(), None), "step {step}");
        }
    }

    #[test]
    fn fragments_are_reassembled_with_control_frames_between_them() {
        let mut bytes = frame(0x01, "ça ".as_bytes());
        bytes.extend(frame(0x89, b"ping!"));
        bytes.extend(frame(0x00, "va ".as_bytes()));
        bytes.extend(frame(0x8a, b""));
        bytes.extend(frame(0x80, "bien".as_bytes()));
        let expected = vec![Incoming::Ping(Bytes::from_static(b"ping!")), Incoming::Pong, text("ça va bien")];
        for step in [1, 5, usize::MAX] {
            assert_eq!(feed(&bytes, step, LIMITS), (expected.clone(), None), "step {step}");
        }
    }

    #[test]
    fn a_character_split_between_fragments_is_valid() {
        let euro = "€".as_bytes();
        let mut bytes = frame(0x01, &euro[..1]);
        bytes.extend(frame(0x00, &euro[1..2]));
        bytes.extend(frame(0x80, &euro[2..]));
        assert_eq!(all(&bytes), (vec![text("€")], None));
    }

    #[test]
    fn unmasked_frames_close_1002() {
        assert_eq!(code(&[0x81, 0x02, b'h', b'i']), Some(1002));
    }

    #[test]
    fn reserved_bits_close_1002() {
        for rsv in [0x40, 0x20, 0x10] {
            assert_eq!(code(&frame(TEXT | rsv, b"x")), Some(1002), "rsv {rsv:#x}");
        }
    }

    #[test]
    fn reserved_opcodes_close_1002() {
        for op in [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(code(&frame(0x80 | op, b"")), Some(1002), "opcode {op:#x}");
        }
    }

    #[test]
    fn control_frame_rules_close_1002() {
        assert_eq!(code(&frame(0x09, b"fragmented ping")), Some(1002));
        assert_eq!(code(&frame(0x89, &[0; 126])), Some(1002));
        assert_eq!(all(&frame(0x89, &[1; 125])).0, vec![Incoming::Ping(Bytes::from(vec![1; 125]))]);
    }

    #[test]
    fn fragmentation_rules_close_1002() {
        // A continuation with nothing to continue.
        assert_eq!(code(&frame(0x80, b"x")), Some(1002));
        // A new message before the last one ended.
        let mut bytes = frame(0x01, b"a");
        bytes.extend(frame(TEXT, b"b"));
        assert_eq!(code(&bytes), Some(1002));
    }

    #[test]
    fn violations_are_found_in_the_first_two_bytes() {
        for bad in [[0x83u8, 0x80], [0xc1, 0x80], [0x81, 0x00], [0x09, 0x80], [0x89, 0xfe], [0x80, 0x80]] {
            assert_eq!(code(&bad), Some(1002), "{bad:02x?}");
        }
    }

    #[test]
    fn a_length_with_its_top_bit_set_closes_1002() {
        let mut bytes = vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1];
        bytes.extend_from_slice(&MASK);
        assert_eq!(code(&bytes), Some(1002));
    }

    #[test]
    fn limits_are_inclusive_and_close_1009() {
        let limits = Limits { max_frame: 100, max_message: 250 };
        assert_eq!(feed(&frame(BINARY, &[1; 100]), usize::MAX, limits).1, None);
        assert_eq!(feed(&frame(BINARY, &[1; 101]), usize::MAX, limits).1, Some(FRAME_TOO_BIG));
        let fragments = |last: usize| {
            let mut bytes = frame(0x02, &[1; 100]);
            bytes.extend(frame(0x00, &[1; 100]));
            bytes.extend(frame(0x80, &vec![1; last]));
            bytes
        };
        assert_eq!(feed(&fragments(50), usize::MAX, limits).1, None);
        assert_eq!(feed(&fragments(51), usize::MAX, limits).1, Some(MESSAGE_TOO_BIG));
    }

    #[test]
    fn a_huge_announced_length_fails_from_its_header_alone() {
        // 2^62 bytes announced, none sent: refused before anything is allocated.
        let mut bytes = vec![0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&MASK);
        assert_eq!(all(&bytes).1, Some(FRAME_TOO_BIG));
        let mut reader = FrameReader::default();
        let mut header = vec![0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0];
        header.extend_from_slice(&MASK);
        // 1 MiB announced and within the limit: still nothing reserved until it arrives.
        assert_eq!(reader.read(&header, LIMITS), Ok((14, None)));
        assert_eq!(reader.message.as_ref().map(|m| m.data.capacity()), Some(0));
    }

    #[test]
    fn invalid_utf8_closes_1007_as_soon_as_it_arrives() {
        assert_eq!(code(&frame(TEXT, b"ok \xc3\x28 not")), Some(1007));
        // A truncated character at the end of the message.
        assert_eq!(code(&frame(TEXT, b"ok \xe2\x82")), Some(1007));
        // The first fragment alone already fails, with the message unfinished.
        assert_eq!(
            code(&frame(0x01, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")),
            Some(1007)
        );
        // Within one frame: the bad bytes fail before the rest of the frame is in.
        let bytes = frame(TEXT, &[b"valid ".as_slice(), b"\xff", &[b'x'; 1000]].concat());
        let mut reader = FrameReader::default();
        assert_eq!(reader.read(&bytes[..20], LIMITS), Err(INVALID_UTF8));
    }

    #[test]
    fn binary_is_not_checked_as_text() {
        let (out, violation) = all(&frame(BINARY, b"\xff\xfe"));
        assert_eq!((out.len(), violation), (1, None));
    }

    #[test]
    fn close_frames_are_parsed_and_checked() {
        let close = |payload: &[u8]| all(&frame(0x88, payload));
        assert_eq!(close(b""), (vec![Incoming::Close(None)], None));
        assert_eq!(close(b"\x03\xe8bye"), (vec![Incoming::Close(Some((1000, "bye".into())))], None));
        assert_eq!(close(b"\x03").1.map(|v| v.code), Some(1002));
        for valid in [1000u16, 1001, 1002, 1003, 1007, 1010, 1011, 1014, 3000, 3999, 4000, 4999] {
            assert_eq!(close(&valid.to_be_bytes()).1, None, "code {valid}");
        }
        for invalid in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert_eq!(close(&invalid.to_be_bytes()).1.map(|v| v.code), Some(1002), "code {invalid}");
        }
        assert_eq!(close(b"\x03\xe8\xff").1.map(|v| v.code), Some(1007));
    }

    #[test]
    fn unmasking_matches_the_bytewise_rule_at_every_offset() {
        let data: Vec<u8> = (0..=255).collect();
        for offset in 0..4 {
            for len in [0, 1, 7, 8, 9, 100] {
                let mut masked = data[..len].to_vec();
                unmask(&mut masked, MASK, offset);
                let expected: Vec<u8> = (0..len).map(|i| data[i] ^ MASK[(offset + i) % 4]).collect();
                assert_eq!(masked, expected, "offset {offset} len {len}");
            }
        }
    }
}
