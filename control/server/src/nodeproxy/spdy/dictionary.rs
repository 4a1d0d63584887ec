//! The zlib dictionary of SPDY/3 header blocks (draft 3, section 2.6.10.1):
//! the header names and values of the draft, each with a 32-bit big-endian
//! length, then a run of plain text. Built at compile time from that
//! description; `tests.rs` checks it against the Adler-32 that real
//! kubectl puts in its first header block.

/// Length-prefixed entries, in the draft's order.
const ENTRIES: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The plain text that follows the entries.
const TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information",
    "204 No Content",
    "301 Moved Permanently",
    "400 Bad Request",
    "401 Unauthorized",
    "403 Forbidden",
    "404 Not Found",
    "500 Internal Server Error",
    "501 Not Implemented",
    "503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec",
    " 00:00:00",
    " Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,",
    "text/plain,text/javascript,public",
    "privatemax-age=gzip,deflate,sdch",
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

const fn size() -> usize {
    let mut n = TAIL.len();
    let mut i = 0;
    while i < ENTRIES.len() {
        n += 4 + ENTRIES[i].len();
        i += 1;
    }
    n
}

pub const LEN: usize = size();

const fn build() -> [u8; LEN] {
    let mut out = [0u8; LEN];
    let mut at = 0;
    let mut i = 0;
    while i < ENTRIES.len() {
        let e = ENTRIES[i].as_bytes();
        let len = (e.len() as u32).to_be_bytes();
        let mut k = 0;
        while k < 4 {
            out[at] = len[k];
            at += 1;
            k += 1;
        }
        let mut k = 0;
        while k < e.len() {
            out[at] = e[k];
            at += 1;
            k += 1;
        }
        i += 1;
    }
    let t = TAIL.as_bytes();
    let mut k = 0;
    while k < t.len() {
        out[at] = t[k];
        at += 1;
        k += 1;
    }
    out
}

/// The dictionary.
pub static DICTIONARY: [u8; LEN] = build();
