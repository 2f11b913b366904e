//! `serve` against a real directory tree (made in the temporary directory, removed
//! after), over an in-memory duplex or a loopback TCP connection.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use super::response::CHUNK_BYTES;
use super::*;

const HELLO: &[u8] = b"hello, world\n";
const SECRET: &[u8] = b"outside the mount\n";
const DIGITS: &[u8] = b"0123456789";
const BIG_BYTES: usize = 5 << 20;

/// A directory tree under the temporary directory, removed when dropped:
///
/// ```text
/// secret.txt                     outside every mount
/// public/                        mounted at /static
///   index.html, hello.txt, digits.txt, "a b.txt"
///   big.bin (5 MiB)              made only by `with_big_file`
///   docs/index.html              a directory with an index
///   empty/                       a directory without one
///   link-inside -> hello.txt     links that stay inside
///   sub/link-up -> ../hello.txt
///   link-outside -> ../secret.txt            links that leave
///   dir-outside -> ..
///   linked-index/index.html -> ../../secret.txt
///   absolute-inside -> <root>/public/hello.txt    absolute links, in and out
///   absolute-outside -> <root>/secret.txt
/// other/only-here.txt            mounted at /static/other
/// ```
struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = format!("roost-static-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let root = std::env::temp_dir().join(unique);
        let tree = Tree { root };
        let public = tree.public();
        for dir in ["public/docs", "public/empty", "public/sub", "public/linked-index", "other"] {
            fs::create_dir_all(tree.root.join(dir)).unwrap();
        }
        fs::write(tree.root.join("secret.txt"), SECRET).unwrap();
        fs::write(public.join("index.html"), "<h1>home</h1>\n").unwrap();
        fs::write(public.join("hello.txt"), HELLO).unwrap();
        fs::write(public.join("digits.txt"), DIGITS).unwrap();
        fs::write(public.join("a b.txt"), "spaced\n").unwrap();
        fs::write(public.join("docs/index.html"), "docs\n").unwrap();
        fs::write(tree.root.join("other/only-here.txt"), "other\n").unwrap();
        symlink("hello.txt", public.join("link-inside")).unwrap();
        symlink("../hello.txt", public.join("sub/link-up")).unwrap();
        symlink("../secret.txt", public.join("link-outside")).unwrap();
        symlink("..", public.join("dir-outside")).unwrap();
        symlink("../../secret.txt", public.join("linked-index/index.html")).unwrap();
        symlink(public.join("hello.txt"), public.join("absolute-inside")).unwrap();
        symlink(tree.root.join("secret.txt"), public.join("absolute-outside")).unwrap();
        tree
    }

    /// Adds public/big.bin, 5 MiB, for the tests that stream.
    fn with_big_file(self) -> Tree {
        fs::write(self.public().join("big.bin"), big_content()).unwrap();
        self
    }

    /// The mounts of `mounts`, looked up through the mount's directory descriptor
    /// (`beneath`) and by the path walk alone: what is served must not depend on which.
    fn both_ways(&self) -> [StaticMounts; 2] {
        [self.mounts(), self.mounts().by_walk_only()]
    }

    fn public(&self) -> PathBuf {
        self.root.join("public")
    }

    fn mounts(&self) -> StaticMounts {
        let mut mounts = StaticMounts::default();
        mounts.add("/static", &self.public()).unwrap();
        mounts.add("/static/other/", &self.root.join("other")).unwrap();
        mounts
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// 5 MiB that no shifted or repeated copy would match (xorshift).
fn big_content() -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..BIG_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn get(path: &str) -> StaticRequest<'_> {
    StaticRequest {
        method: "GET",
        path: path.as_bytes(),
        if_none_match: None,
        if_modified_since: None,
        range: None,
    }
}

fn head(path: &str) -> StaticRequest<'_> {
    StaticRequest { method: "HEAD", ..get(path) }
}

#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

fn parse(bytes: &[u8]) -> Answer {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = std::str::from_utf8(&bytes[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("a header line");
            (name.to_string(), value.to_string())
        })
        .collect();
    Answer { status, headers, body: bytes[end + 4..].to_vec() }
}

/// Serves one request over a duplex; the answer as the client read it.
async fn exchange_with(
    mounts: &StaticMounts,
    request: StaticRequest<'_>,
    keep_alive: bool,
) -> Option<Answer> {
    let (mut server, mut client) = tokio::io::duplex(16 << 10);
    let serving = async move {
        let served = serve(mounts, &request, &mut server, keep_alive).await.unwrap();
        drop(server);
        served
    };
    let reading = async {
        let mut bytes = Vec::new();
        client.read_to_end(&mut bytes).await.unwrap();
        bytes
    };
    let (served, bytes) = tokio::join!(serving, reading);
    let Some(status) = served else {
        assert!(bytes.is_empty(), "nothing is written for a path no mount covers");
        return None;
    };
    let answer = parse(&bytes);
    assert_eq!(answer.status, status, "serve returns the status it wrote");
    assert_eq!(answer.header("X-Content-Type-Options"), Some("nosniff"));
    if request.method == "GET" && status != 304 {
        let length: usize = answer.header("Content-Length").expect("a Content-Length").parse().unwrap();
        assert_eq!(length, answer.body.len(), "the body is as long as announced");
    }
    if request.method == "HEAD" || status == 304 {
        assert!(answer.body.is_empty(), "no body for a HEAD or a 304");
    }
    Some(answer)
}

async fn exchange(mounts: &StaticMounts, request: StaticRequest<'_>) -> Answer {
    exchange_with(mounts, request, true).await.expect("a mount covers the path")
}

#[tokio::test]
async fn a_file_comes_with_its_type_length_validators_and_accept_ranges() {
    let tree = Tree::new();
    let answer = exchange(&tree.mounts(), get("/static/hello.txt")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, HELLO);
    assert_eq!(answer.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(answer.header("Accept-Ranges"), Some("bytes"));
    assert!(answer.header("ETag").is_some_and(|tag| tag.starts_with('"') && tag.ends_with('"')));
    let modified = fs::metadata(tree.public().join("hello.txt")).unwrap().modified().unwrap();
    let seconds = modified.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert_eq!(answer.header("Last-Modified"), http_date::format(seconds).as_deref());
    assert_eq!(answer.header("Connection"), None, "kept alive");
}

#[tokio::test]
async fn connection_close_is_said_when_the_caller_will_close() {
    let tree = Tree::new();
    for path in ["/static/hello.txt", "/static/missing", "/static/docs"] {
        let answer = exchange_with(&tree.mounts(), get(path), false).await.unwrap();
        assert_eq!(answer.header("Connection"), Some("close"), "{path}");
    }
}

#[tokio::test]
async fn paths_no_mount_covers_are_left_to_the_caller_untouched() {
    let tree = Tree::new();
    let mounts = tree.mounts();
    for path in ["/", "/other/hello.txt", "/staticx/hello.txt", "/statichello.txt", "static/hello.txt", ""] {
        assert!(!mounts.covers(path.as_bytes()), "{path}");
        assert_eq!(exchange_with(&mounts, get(path), true).await, None, "{path}");
    }
    assert!(mounts.covers(b"/static"));
    assert!(mounts.covers(b"/static/"));
    assert!(mounts.covers(b"/static/../x"));
}

#[tokio::test]
async fn a_root_mount_covers_every_path() {
    let tree = Tree::new();
    let mut mounts = StaticMounts::default();
    mounts.add("/", &tree.public()).unwrap();
    assert_eq!(exchange(&mounts, get("/hello.txt")).await.body, HELLO);
    assert_eq!(exchange(&mounts, get("/")).await.text(), "<h1>home</h1>\n");
    assert_eq!(exchange(&mounts, get("/nothing/here")).await.status, 404);
}

#[tokio::test]
async fn the_longest_prefix_serves_and_a_miss_there_is_not_looked_for_elsewhere() {
    let tree = Tree::new();
    let mounts = tree.mounts();
    assert_eq!(exchange(&mounts, get("/static/other/only-here.txt")).await.text(), "other\n");
    assert_eq!(exchange(&mounts, get("/static/only-here.txt")).await.status, 404);
    fs::create_dir(tree.public().join("other")).unwrap();
    fs::write(tree.public().join("other/hello.txt"), HELLO).unwrap();
    assert_eq!(exchange(&mounts, get("/static/other/hello.txt")).await.status, 404);
}

#[tokio::test]
async fn traversal_in_any_spelling_is_the_same_404_as_a_missing_file() {
    let tree = Tree::new();
    for mounts in tree.both_ways() {
        traversal_is_missing(&mounts).await;
    }
}

async fn traversal_is_missing(mounts: &StaticMounts) {
    let missing = exchange(mounts, get("/static/no-such-file")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), "Not Found\n");
    for path in [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2e/secret.txt",
        "/static/%2E%2e/",
        "/static/..%2fsecret.txt",
        "/static/..%2Fsecret.txt",
        "/static/docs/..%2f..%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/..\\secret.txt",
        "/static/hello.txt%00",
        "/static/hello.txt%00.png",
        "/static/./hello.txt",
        "/static/sub/../hello.txt",
        "/static/hello%zz",
        "/static/hello.txt%",
        "/static/link-outside",
        "/static/dir-outside/secret.txt",
        "/static/linked-index/",
        "/static/absolute-outside",
    ] {
        let answer = exchange(mounts, get(path)).await;
        assert_eq!(answer, missing, "{path}");
        let head = exchange(mounts, head(path)).await;
        assert_eq!(head.status, 404, "{path}");
    }
}

#[tokio::test]
async fn links_that_stay_inside_are_followed() {
    let tree = Tree::new();
    for mounts in tree.both_ways() {
        // What matters is where a path ends: out through a link and back in is inside.
        for path in [
            "/static/link-inside",
            "/static/sub/link-up",
            "/static/dir-outside/public/link-inside",
            "/static/absolute-inside",
        ] {
            let answer = exchange(&mounts, get(path)).await;
            assert_eq!((answer.status, answer.body.as_slice()), (200, HELLO), "{path}");
            // The type of the name asked for, not of the link's target.
            assert_eq!(answer.header("Content-Type"), Some("application/octet-stream"));
        }
    }
}

#[tokio::test]
async fn mounts_look_up_through_their_directory_descriptor_here() {
    // This kernel has openat2 (Linux 5.6 and later): the tests above run both ways.
    let tree = Tree::new();
    assert!(tree.mounts().mounts.iter().all(|mount| mount.handle.is_some()));
    assert!(tree.mounts().by_walk_only().mounts.iter().all(|mount| mount.handle.is_none()));
}

#[tokio::test]
async fn encoded_names_and_collapsed_slashes_are_served() {
    let tree = Tree::new();
    for mounts in tree.both_ways() {
        assert_eq!(exchange(&mounts, get("/static/a%20b.txt")).await.text(), "spaced\n");
        assert_eq!(exchange(&mounts, get("/static//hello.txt")).await.body, HELLO);
        assert_eq!(exchange(&mounts, get("/static/hello%2Etxt")).await.body, HELLO);
    }
}

#[tokio::test]
async fn a_directory_serves_its_index_and_without_its_slash_is_redirected() {
    let tree = Tree::new();
    for mounts in tree.both_ways() {
        directory_answers(&mounts).await;
    }
}

async fn directory_answers(mounts: &StaticMounts) {
    let home = exchange(mounts, get("/static/")).await;
    assert_eq!((home.status, home.text()), (200, "<h1>home</h1>\n"));
    assert_eq!(home.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(exchange(mounts, get("/static/docs/")).await.text(), "docs\n");
    for (path, location) in [
        ("/static", "/static/"),
        ("/static/docs", "/static/docs/"),
        ("/static//docs", "/static/docs/"),
        ("/static/empty", "/static/empty/"),
    ] {
        let answer = exchange(mounts, get(path)).await;
        assert_eq!((answer.status, answer.header("Location")), (301, Some(location)), "{path}");
    }
    // No listings, and a file is not a directory.
    assert_eq!(exchange(mounts, get("/static/empty/")).await.status, 404);
    assert_eq!(exchange(mounts, get("/static/hello.txt/")).await.status, 404);
}

#[tokio::test]
async fn head_gets_the_heads_of_get_without_a_body() {
    let tree = Tree::new();
    let mounts = tree.mounts();
    for path in ["/static/hello.txt", "/static/", "/static/docs", "/static/missing", "/static/digits.txt"] {
        let got = exchange(&mounts, get(path)).await;
        let headed = exchange(&mounts, head(path)).await;
        assert_eq!((headed.status, &headed.headers), (got.status, &got.headers), "{path}");
    }
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let tree = Tree::new();
    let mounts = tree.mounts();
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
        for path in ["/static/hello.txt", "/static/missing"] {
            let answer = exchange(&mounts, StaticRequest { method, ..get(path) }).await;
            assert_eq!(answer.status, 405, "{method} {path}");
            assert_eq!(answer.header("Allow"), Some("GET, HEAD"));
            assert_eq!(answer.text(), "Method Not Allowed\n");
        }
    }
}

fn conditional<'a>(if_none_match: Option<&'a str>, if_modified_since: Option<&'a str>) -> StaticRequest<'a> {
    StaticRequest {
        if_none_match: if_none_match.map(str::as_bytes),
        if_modified_since: if_modified_since.map(str::as_bytes),
        ..get("/static/hello.txt")
    }
}

#[tokio::test]
async fn a_current_copy_gets_304_by_etag_or_by_date() {
    let tree = Tree::new();
    let mounts = tree.mounts();
    let first = exchange(&mounts, get("/static/hello.txt")).await;
    let etag = first.header("ETag").unwrap();
    let weak = format!("W/{etag}");
    let listed = format!("\"stale\", {etag}");
    let date = first.header("Last-Modified").unwrap();
    for (request, status) in [
        (conditional(Some(etag), None), 304),
        (conditional(Some(&weak), None), 304),
        (conditional(Some(&listed), None), 304),
        (conditional(Some("*"), None), 304),
        (conditional(None, Some(date)), 304),
        (conditional(None, Some("Fri, 31 Dec 9999 23:59:59 GMT")), 304),
        (conditional(Some("\"stale\""), None), 200),
        // If-None-Match decides when present, either way.
        (conditional(Some("\"stale\""), Some(date)), 200),
        (conditional(Some(etag), Some("Thu, 01 Jan 1970 00:00:00 GMT")), 304),
        (conditional(None, Some("Thu, 01 Jan 1970 00:00:00 GMT")), 200),
        (conditional(None, Some("not a date")), 200),
    ] {
        let answer = exchange(&mounts, request).await;
        assert_eq!(answer.status, status, "{request:?}");
        if status == 304 {
            assert_eq!(answer.header("ETag"), Some(etag));
            assert_eq!(answer.header("Last-Modified"), Some(date));
            assert_eq!(answer.header("Content-Length"), None);
        } else {
            assert_eq!(answer.body, HELLO);
        }
    }
    let headed = exchange(&mounts, StaticRequest { method: "HEAD", ..conditional(Some(etag), None) }).await;
    assert_eq!(headed.status, 304);
}

#[tokio::test]
async fn a_changed_file_gets_a_new_etag() {
    let tree = Tree::new();
    let mounts = tree.mounts();
    let before = exchange(&mounts, get("/static/hello.txt")).await;
    fs::write(tree.public().join("hello.txt"), b"hello again\n").unwrap();
    let after = exchange(&mounts, get("/static/hello.txt")).await;
    assert_ne!(before.header("ETag"), after.header("ETag"));
    let request =
        StaticRequest { if_none_match: before.header("ETag").map(str::as_bytes), ..get("/static/hello.txt") };
    assert_eq!(exchange(&mounts, request).await.text(), "hello again\n");
}

#[tokio::test]
async fn one_range_gets_206_and_an_unsatisfiable_one_416() {
    let tree = Tree::new();
    let mounts = tree.mounts();
    let ranged =
        |range: &'static str| StaticRequest { range: Some(range.as_bytes()), ..get("/static/digits.txt") };
    for (range, body, content_range) in [
        ("bytes=2-5", "2345", "bytes 2-5/10"),
        ("bytes=7-", "789", "bytes 7-9/10"),
        ("bytes=-3", "789", "bytes 7-9/10"),
    ] {
        let answer = exchange(&mounts, ranged(range)).await;
        assert_eq!(answer.status, 206, "{range}");
        assert_eq!(answer.text(), body, "{range}");
        assert_eq!(answer.header("Content-Range"), Some(content_range));
        assert_eq!(answer.header("Content-Type"), Some("text/plain; charset=utf-8"));
    }
    for range in ["bytes=10-", "bytes=-0"] {
        let answer = exchange(&mounts, ranged(range)).await;
        assert_eq!(answer.status, 416, "{range}");
        assert_eq!(answer.header("Content-Range"), Some("bytes */10"));
    }
    for range in ["bytes=0-1,4-5", "bytes=5-2", "lines=1-2"] {
        let answer = exchange(&mounts, ranged(range)).await;
        assert_eq!((answer.status, answer.body.as_slice()), (200, DIGITS), "{range}");
        assert_eq!(answer.header("Accept-Ranges"), Some("bytes"));
    }
    let headed = exchange(&mounts, StaticRequest { method: "HEAD", ..ranged("bytes=2-5") }).await;
    assert_eq!((headed.status, headed.header("Content-Length")), (200, Some("10")));
    let etag = exchange(&mounts, get("/static/digits.txt")).await.header("ETag").unwrap().to_string();
    let current = StaticRequest { if_none_match: Some(etag.as_bytes()), ..ranged("bytes=2-5") };
    assert_eq!(exchange(&mounts, current).await.status, 304);
}

#[tokio::test]
async fn a_range_across_chunks_is_byte_exact() {
    let tree = Tree::new().with_big_file();
    let content = big_content();
    let (first, last) = (CHUNK_BYTES - 5, 3 * CHUNK_BYTES + 17);
    let range = format!("bytes={first}-{last}");
    let request = StaticRequest { range: Some(range.as_bytes()), ..get("/static/big.bin") };
    let answer = exchange(&tree.mounts(), request).await;
    assert_eq!(answer.status, 206);
    assert!(answer.body == content[first..=last], "the range's bytes, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_mib_stream_byte_exact_over_tcp_from_the_blocking_pool() {
    let tree = Tree::new().with_big_file();
    let mounts = tree.mounts();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap());
    let ((mut server, _), mut client) = tokio::try_join!(listener.accept(), client).unwrap();
    let serving = tokio::spawn(async move {
        let served = serve(&mounts, &get("/static/big.bin"), &mut server, false).await;
        drop(server);
        served
    });
    let mut bytes = Vec::new();
    client.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(serving.await.unwrap().unwrap(), Some(200));
    let answer = parse(&bytes);
    assert_eq!(answer.header("Content-Length"), Some(BIG_BYTES.to_string().as_str()));
    assert_eq!(answer.header("Connection"), Some("close"));
    assert!(answer.body == big_content(), "the 5 MiB, byte for byte");
}

/// A sink that records the largest write, and can truncate a file after its first.
struct Sink {
    largest_write: usize,
    total: usize,
    truncate_after_first_write: Option<PathBuf>,
}

impl AsyncWrite for Sink {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let sink = self.get_mut();
        sink.largest_write = sink.largest_write.max(buf.len());
        sink.total += buf.len();
        if let Some(path) = sink.truncate_after_first_write.take() {
            fs::File::options().write(true).open(path).unwrap().set_len(0).unwrap();
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_large_file_goes_out_one_chunk_at_a_time() {
    let tree = Tree::new().with_big_file();
    let mut sink = Sink { largest_write: 0, total: 0, truncate_after_first_write: None };
    let served = serve(&tree.mounts(), &get("/static/big.bin"), &mut sink, true).await.unwrap();
    assert_eq!(served, Some(200));
    assert!(sink.total > BIG_BYTES);
    // The head rides with the first chunk; no write holds more than that.
    assert!(sink.largest_write <= CHUNK_BYTES + 512, "largest write {}", sink.largest_write);
}

#[tokio::test]
async fn a_file_that_shrinks_while_sent_ends_the_connection() {
    let tree = Tree::new().with_big_file();
    let path = tree.public().join("big.bin");
    let mut sink = Sink { largest_write: 0, total: 0, truncate_after_first_write: Some(path) };
    let err = serve(&tree.mounts(), &get("/static/big.bin"), &mut sink, true).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn mounts_refuse_bad_prefixes_and_directories_saying_which() {
    let tree = Tree::new();
    let mut mounts = StaticMounts::default();
    assert!(mounts.is_empty());
    let refusal = |result: Result<(), Error>| match result {
        Err(Error::InvalidArgument(message)) => message,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert!(refusal(mounts.add("static", &tree.public())).contains("must start with \"/\""));
    assert!(refusal(mounts.add("/my files", &tree.public())).contains("printable ASCII"));
    assert!(refusal(mounts.add("/x?y", &tree.public())).contains("printable ASCII"));
    let missing = tree.root.join("missing");
    assert!(refusal(mounts.add("/missing", &missing)).contains(&*missing.to_string_lossy()));
    let file = tree.public().join("hello.txt");
    assert!(refusal(mounts.add("/file", &file)).contains("is not a directory"));
    assert!(mounts.is_empty());
    mounts.add("/static/", &tree.public()).unwrap();
    assert!(refusal(mounts.add("/static", &tree.root.join("other"))).contains("already mounted"));
    assert!(!mounts.is_empty());
}

#[tokio::test]
async fn the_directory_is_canonical_from_when_it_was_mounted() {
    let tree = Tree::new();
    let link = tree.root.join("public-link");
    symlink(tree.public(), &link).unwrap();
    let mut mounts = StaticMounts::default();
    mounts.add("/via-link", Path::new(&link).join("../public").as_path()).unwrap();
    // Replacing the link after the mount changes nothing: the real directory is mounted.
    fs::remove_file(&link).unwrap();
    symlink(tree.root.join("other"), &link).unwrap();
    assert_eq!(exchange(&mounts, get("/via-link/hello.txt")).await.body, HELLO);
}
