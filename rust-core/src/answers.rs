//! Answers the consumer owes: HTTP requests handed out as REQUEST events and upgrades
//! handed out as UPGRADE_REQUEST events, each waiting under its id for `respond` or
//! `accept_upgrade`, which may come from any thread. The connection's task waits on
//! the receiving end; when it stops waiting (the answer came, the time ran out, the
//! client left, the runtime was shut down) its `Waiting` takes the entry out, so a late
//! answer finds nothing (`Error::NotFound`) and nothing is left behind.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::routes::is_token_byte;

/// What the consumer was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    /// An HTTP request for one of its routes.
    Request,
    /// Whether a WebSocket upgrade may go ahead.
    Upgrade,
}

/// A response the consumer gave, checked and copied.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Zero or more `Name: value\r\n` lines.
    pub(crate) headers: Box<[u8]>,
    pub(crate) body: Bytes,
}

/// The consumer's answer.
#[derive(Debug)]
pub(crate) enum Answer {
    Respond(Response),
    /// The upgrade goes ahead.
    Accept,
}

/// Everything waiting for an answer, by id.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    waiting: Mutex<HashMap<u64, (Asked, oneshot::Sender<Answer>)>>,
}

/// A connection's task waiting for the answer to `id`. Dropping it withdraws the
/// question.
#[derive(Debug)]
pub(crate) struct Waiting<'a> {
    answers: &'a Answers,
    id: u64,
    receiver: oneshot::Receiver<Answer>,
}

impl Waiting<'_> {
    /// The answer, once given.
    pub(crate) async fn answer(&mut self) -> Option<Answer> {
        (&mut self.receiver).await.ok()
    }

    /// Withdraws the question; returns the answer if one was given in the meantime (it
    /// won the race with the time limit, and its caller was told it arrived).
    pub(crate) async fn give_up(mut self) -> Option<Answer> {
        if self.answers.take(self.id).is_some() {
            return None;
        }
        // Taken by an answer, which is sent right after it is taken.
        self.answer().await
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.answers.take(self.id);
    }
}

impl Answers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Asked, oneshot::Sender<Answer>)>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, id: u64) -> Option<(Asked, oneshot::Sender<Answer>)> {
        self.lock().remove(&id)
    }

    /// Starts waiting for the answer to `id` (a fresh id, never reused).
    pub(crate) fn ask(&self, id: u64, asked: Asked) -> Waiting<'_> {
        let (sender, receiver) = oneshot::channel();
        self.lock().insert(id, (asked, sender));
        Waiting { answers: self, id, receiver }
    }

    /// Answers `id` with a response: for a request, its status 200-599; for an
    /// upgrade, the refusal, 300-599. `headers` are `Name: value\r\n` lines; the core
    /// writes `Content-Length` and `Connection` itself.
    pub(crate) fn respond(&self, id: u64, status: u16, headers: &[u8], body: &[u8]) -> Result<()> {
        check_headers(headers)?;
        let response = Response { status, headers: headers.into(), body: Bytes::copy_from_slice(body) };
        let mut waiting = self.lock();
        let (asked, _) = waiting.get(&id).ok_or(Error::NotFound)?;
        check_status(*asked, status, body)?;
        let (_, sender) = waiting.remove(&id).ok_or(Error::NotFound)?;
        drop(waiting);
        // A task that gave up between the removal and now finds its answer on
        // `give_up`; one that is gone entirely was dropped, and the answer with it.
        let _ = sender.send(Answer::Respond(response));
        Ok(())
    }

    /// Lets the upgrade `id` go ahead.
    pub(crate) fn accept(&self, id: u64) -> Result<()> {
        let mut waiting = self.lock();
        match waiting.get(&id) {
            None => return Err(Error::NotFound),
            Some((Asked::Request, _)) => {
                return Err(Error::InvalidArgument(format!(
                    "{id} is an HTTP request, not an upgrade: answer it with respond"
                )))
            }
            Some((Asked::Upgrade, _)) => {}
        }
        let (_, sender) = waiting.remove(&id).ok_or(Error::NotFound)?;
        drop(waiting);
        let _ = sender.send(Answer::Accept);
        Ok(())
    }

    /// Questions waiting for an answer.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn check_status(asked: Asked, status: u16, body: &[u8]) -> Result<()> {
    let lowest = match asked {
        // 1xx answers are the core's own (100 Continue); 101 only through an upgrade.
        Asked::Request => 200,
        // Anything below 300 would say the upgrade succeeded.
        Asked::Upgrade => 300,
    };
    if !(lowest..=599).contains(&status) {
        let what = if asked == Asked::Request { "an HTTP request" } else { "a refused upgrade" };
        return Err(Error::InvalidArgument(format!("status {status} is not one for {what} ({lowest}-599)")));
    }
    if matches!(status, 204 | 304) && !body.is_empty() {
        return Err(Error::InvalidArgument(format!("a {status} response has no body")));
    }
    Ok(())
}

/// Headers a response may not set: the core writes them itself, and a second one
/// would make the response mean something else to the client (RFC 9112 6.3).
const CORE_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// Checks a consumer's header lines, so that nothing it passes can end the head early,
/// start another header or response, or contradict the framing the core writes.
pub(crate) fn check_headers(headers: &[u8]) -> Result<()> {
    let invalid = |why: String| Err(Error::InvalidArgument(why));
    let mut rest = headers;
    while !rest.is_empty() {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return invalid("headers must be lines that each end with \\r\\n".into());
        };
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if line.is_empty() {
            return invalid("an empty header line would end the response head".into());
        }
        let shown = String::from_utf8_lossy(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return invalid(format!("header line {shown:?} has no ':'"));
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().copied().all(is_token_byte) {
            return invalid(format!("header name in {shown:?} is not a token"));
        }
        // Field values may hold tabs and bytes above 0x7F, no other control byte.
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7F) {
            return invalid(format!("header value in {shown:?} holds a control byte (CR, LF, NUL...)"));
        }
        if let Some(core) = CORE_HEADERS.iter().find(|h| name.eq_ignore_ascii_case(h.as_bytes())) {
            return invalid(format!("{core} is written by the core; a response may not set it"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_are_checked_and_the_core_s_own_headers_refused() {
        for good in
            [&b""[..], b"X-A: 1\r\n", b"Content-Type: text/plain\r\nSet-Cookie: a=b; Path=/\r\n", b"X:\r\n"]
        {
            assert!(check_headers(good).is_ok(), "{:?}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"X-A: 1"[..],
            b"\r\n",
            b"X-A: 1\r\n\r\n",
            b"X-A: 1\nX-B: 2\r\n",
            b"X-A: 1\rX-B: 2\r\n",
            b"X-A: a\0b\r\n",
            b"Bad Name: 1\r\n",
            b": 1\r\n",
            b"NoColon\r\n",
            b" folded: 1\r\n",
            b"Content-Length: 5\r\n",
            b"transfer-encoding: chunked\r\n",
            b"CONNECTION: close\r\n",
        ] {
            assert!(check_headers(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn an_answer_reaches_its_waiter_once_and_a_late_one_finds_nothing() {
        let answers = Answers::default();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut waiting = answers.ask(7, Asked::Request);
        assert!(matches!(answers.accept(7), Err(Error::InvalidArgument(_))), "a request is not accepted");
        assert!(matches!(answers.respond(7, 101, b"", b""), Err(Error::InvalidArgument(_))));
        assert!(matches!(answers.respond(7, 204, b"", b"x"), Err(Error::InvalidArgument(_))));
        answers.respond(7, 200, b"X-A: 1\r\n", b"hi").unwrap();
        assert!(matches!(answers.respond(7, 200, b"", b""), Err(Error::NotFound)));
        let Some(Answer::Respond(response)) = rt.block_on(waiting.answer()) else { panic!("no answer") };
        assert_eq!(
            (response.status, &*response.headers, &response.body[..]),
            (200, &b"X-A: 1\r\n"[..], &b"hi"[..])
        );
        drop(waiting);
        assert_eq!(answers.len(), 0);

        let waiting = answers.ask(8, Asked::Upgrade);
        assert!(matches!(answers.respond(8, 200, b"", b""), Err(Error::InvalidArgument(_))));
        assert!(rt.block_on(waiting.give_up()).is_none());
        assert!(matches!(answers.accept(8), Err(Error::NotFound)));
        assert_eq!(answers.len(), 0);

        // An answer that came just before the waiter gave up is still its answer.
        let waiting = answers.ask(9, Asked::Upgrade);
        answers.accept(9).unwrap();
        assert!(matches!(rt.block_on(waiting.give_up()), Some(Answer::Accept)));
    }
}
