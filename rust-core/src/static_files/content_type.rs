//! The Content-Type of a served file, from its name's extension. Browsers act on the
//! type (a script with the wrong one is refused, and `nosniff` stops them guessing), so
//! the table covers what web front ends ship; text types name their charset, since
//! without it a browser falls back to a locale's legacy encoding.

/// What a file with an extension not in the table is sent as: bytes, which a browser
/// downloads rather than renders.
pub(crate) const UNKNOWN: &str = "application/octet-stream";

/// Extension (lower case) -> Content-Type.
const TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    // RFC 9239: text/javascript is the one type for JavaScript, modules included.
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json; charset=utf-8"),
    // Source maps are JSON.
    ("map", "application/json; charset=utf-8"),
    ("webmanifest", "application/manifest+json; charset=utf-8"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("xml", "application/xml; charset=utf-8"),
    ("svg", "image/svg+xml; charset=utf-8"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("ico", "image/x-icon"),
    ("wasm", "application/wasm"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("mp3", "audio/mpeg"),
    ("ogg", "audio/ogg"),
    ("wav", "audio/wav"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
];

/// The Content-Type for a file named `name` (its last path segment); the extension is
/// compared without regard to ASCII case (`LOGO.PNG` is a PNG).
pub(crate) fn for_name(name: &[u8]) -> &'static str {
    let Some(dot) = name.iter().rposition(|&b| b == b'.') else {
        return UNKNOWN;
    };
    let extension = &name[dot + 1..];
    TYPES
        .iter()
        .find(|(known, _)| known.as_bytes().eq_ignore_ascii_case(extension))
        .map_or(UNKNOWN, |&(_, content_type)| content_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_types_carry_utf_8_and_binary_types_do_not() {
        assert_eq!(for_name(b"index.html"), "text/html; charset=utf-8");
        assert_eq!(for_name(b"page.htm"), "text/html; charset=utf-8");
        assert_eq!(for_name(b"site.css"), "text/css; charset=utf-8");
        assert_eq!(for_name(b"app.js"), "text/javascript; charset=utf-8");
        assert_eq!(for_name(b"module.mjs"), "text/javascript; charset=utf-8");
        assert_eq!(for_name(b"data.json"), "application/json; charset=utf-8");
        assert_eq!(for_name(b"app.js.map"), "application/json; charset=utf-8");
        assert_eq!(for_name(b"notes.txt"), "text/plain; charset=utf-8");
        assert_eq!(for_name(b"table.csv"), "text/csv; charset=utf-8");
        assert_eq!(for_name(b"feed.xml"), "application/xml; charset=utf-8");
        assert_eq!(for_name(b"logo.svg"), "image/svg+xml; charset=utf-8");
        assert_eq!(for_name(b"logo.png"), "image/png");
        assert_eq!(for_name(b"photo.jpg"), "image/jpeg");
        assert_eq!(for_name(b"photo.jpeg"), "image/jpeg");
        assert_eq!(for_name(b"anim.gif"), "image/gif");
        assert_eq!(for_name(b"photo.webp"), "image/webp");
        assert_eq!(for_name(b"favicon.ico"), "image/x-icon");
        assert_eq!(for_name(b"module.wasm"), "application/wasm");
        assert_eq!(for_name(b"font.woff"), "font/woff");
        assert_eq!(for_name(b"font.woff2"), "font/woff2");
        assert_eq!(for_name(b"font.ttf"), "font/ttf");
        assert_eq!(for_name(b"clip.mp4"), "video/mp4");
        assert_eq!(for_name(b"clip.webm"), "video/webm");
        assert_eq!(for_name(b"song.mp3"), "audio/mpeg");
        assert_eq!(for_name(b"paper.pdf"), "application/pdf");
    }

    #[test]
    fn extensions_are_matched_without_case_and_unknown_ones_are_bytes() {
        assert_eq!(for_name(b"LOGO.PNG"), "image/png");
        assert_eq!(for_name(b"Index.Html"), "text/html; charset=utf-8");
        assert_eq!(for_name(b"archive.tar.gz"), UNKNOWN);
        assert_eq!(for_name(b"Makefile"), UNKNOWN);
        assert_eq!(for_name(b"trailing."), UNKNOWN);
        assert_eq!(for_name(b"html"), UNKNOWN);
        assert_eq!(for_name(b"caf\xc3\xa9.css"), "text/css; charset=utf-8");
    }
}
