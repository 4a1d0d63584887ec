//! SPDY/3.1 framing, the server's half of what `kubectl port-forward`
//! speaks (client-go's `spdystream`, tunnelled through WebSocket binary
//! messages by default since Kubernetes 1.31, or over a raw `Upgrade:
//! SPDY/3.1` connection). Pure: bytes in, [`Frame`]s out and back.
//!
//! Wire format (draft 3, section 2.2): a control frame is `1 | version:15 |
//! type:16 | flags:8 | length:24 | payload`, a data frame `0 | stream:31 |
//! flags:8 | length:24 | data`. Header blocks (SYN_STREAM, SYN_REPLY,
//! HEADERS) are `count:32` then `len:32 name len:32 value` pairs, several
//! values of one name separated by NUL, compressed with one zlib stream per
//! direction for the whole connection, primed with SPDY/3's dictionary
//! ([`dictionary`]) and sync-flushed after every block — so the header
//! state ([`HeaderDecoder`], [`HeaderEncoder`]) lives as long as the
//! connection, one per direction.
//!
//! Flow control: spdystream keeps no windows and sends no WINDOW_UPDATE,
//! so neither does this side (a WINDOW_UPDATE read is returned and
//! ignored by the caller); back-pressure is the transport's.

pub mod dictionary;

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

pub const VERSION: u16 = 3;

pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const SETTINGS: u16 = 4;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const HEADERS: u16 = 8;
pub const WINDOW_UPDATE: u16 = 9;

/// FIN on a data frame, SYN_STREAM, SYN_REPLY or HEADERS.
pub const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status codes used here.
pub const PROTOCOL_ERROR: u32 = 1;
pub const REFUSED_STREAM: u32 = 3;
pub const CANCEL: u32 = 5;

/// The largest frame read: spdystream writes at most 2^24-1 bytes of data
/// (the field's limit); a control frame that large is refused.
pub const MAX_CONTROL: usize = 1 << 20;
/// The largest header block once decompressed.
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// What a data frame written here carries at most.
pub const MAX_DATA_WRITE: usize = 64 * 1024;

pub type Headers = Vec<(String, String)>;

/// One frame, unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    /// (flags, id, value) per entry.
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type this side does not know (the draft says
    /// to ignore those).
    Unknown {
        kind: u16,
    },
}

impl Frame {
    /// The first value of header `name` (names are lower case on the wire).
    pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpdyError {
    #[error("SPDY version {0}: only version 3 is spoken")]
    Version(u16),
    #[error("control frame of {len} bytes: larger than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("{kind} frame: {reason}")]
    Malformed { kind: &'static str, reason: String },
    #[error("header block: {0}")]
    Headers(String),
}

fn malformed(kind: &'static str, reason: impl Into<String>) -> SpdyError {
    SpdyError::Malformed {
        kind,
        reason: reason.into(),
    }
}

/// The reading direction's zlib state, for the whole connection.
pub struct HeaderDecoder {
    inflate: Decompress,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        Self {
            inflate: Decompress::new(true),
        }
    }
}

impl HeaderDecoder {
    /// Decompresses one header block (the peer sync-flushed after it).
    fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let err = |e: String| SpdyError::Headers(e);
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err(err(format!(
                        "more than {MAX_HEADER_BLOCK} bytes once decompressed"
                    )));
                }
                out.reserve(out.len().max(256));
            }
            let (in0, out0) = (self.inflate.total_in(), out.len());
            let r = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.inflate.total_in() - in0) as usize;
            input = &input[used..];
            match r {
                Ok(flate2::Status::StreamEnd) => {
                    return Err(err("the peer ended its zlib stream".into()));
                }
                Ok(_) => {
                    let full = out.len() == out.capacity();
                    if input.is_empty() && !full {
                        return Ok(out);
                    }
                    if used == 0 && out.len() == out0 && !full {
                        return Err(err("zlib made no progress".into()));
                    }
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&dictionary::DICTIONARY)
                        .map_err(|e| err(format!("the peer's dictionary is not SPDY/3's: {e}")))?;
                }
                Err(e) => return Err(err(e.to_string())),
            }
        }
    }

    /// A header block's name/value pairs (NUL-separated values split).
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let raw = self.inflate(block)?;
        parse_block(&raw)
    }
}

/// Name/value pairs from a decompressed header block.
pub fn parse_block(raw: &[u8]) -> Result<Headers, SpdyError> {
    let err = |e: &str| SpdyError::Headers(e.into());
    let mut b = raw;
    let take_u32 = |b: &mut &[u8]| -> Result<u32, SpdyError> {
        if b.len() < 4 {
            return Err(err("truncated"));
        }
        Ok(b.get_u32())
    };
    let take_str = |b: &mut &[u8], n: u32| -> Result<String, SpdyError> {
        let n = n as usize;
        if b.len() < n {
            return Err(err("truncated"));
        }
        let s = String::from_utf8_lossy(&b[..n]).into_owned();
        b.advance(n);
        Ok(s)
    };
    let count = take_u32(&mut b)?;
    let mut out = Vec::new();
    for _ in 0..count {
        let n = take_u32(&mut b)?;
        if n == 0 {
            return Err(err("a header with an empty name"));
        }
        let name = take_str(&mut b, n)?;
        let n = take_u32(&mut b)?;
        let value = take_str(&mut b, n)?;
        for v in value.split('\0') {
            out.push((name.clone(), v.to_string()));
        }
    }
    Ok(out)
}

/// The writing direction's zlib state, for the whole connection.
pub struct HeaderEncoder {
    deflate: Compress,
    primed: bool,
}

impl Default for HeaderEncoder {
    fn default() -> Self {
        Self {
            deflate: Compress::new(Compression::default(), true),
            primed: false,
        }
    }
}

impl HeaderEncoder {
    /// One compressed header block, sync-flushed.
    pub fn encode(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        let err = |e: String| SpdyError::Headers(e);
        if !self.primed {
            self.deflate
                .set_dictionary(&dictionary::DICTIONARY)
                .map_err(|e| err(e.to_string()))?;
            self.primed = true;
        }
        // Several values of one name go out as one, NUL-separated.
        let mut names: Vec<(&str, Vec<&str>)> = Vec::new();
        for (n, v) in headers {
            match names.iter_mut().find(|(m, _)| *m == n.as_str()) {
                Some((_, vs)) => vs.push(v),
                None => names.push((n, vec![v])),
            }
        }
        let mut raw = Vec::new();
        raw.extend_from_slice(&(names.len() as u32).to_be_bytes());
        for (n, vs) in names {
            let n = n.to_ascii_lowercase();
            let v = vs.join("\0");
            raw.extend_from_slice(&(n.len() as u32).to_be_bytes());
            raw.extend_from_slice(n.as_bytes());
            raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = raw.as_slice();
        loop {
            let in0 = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| err(e.to_string()))?;
            input = &input[(self.deflate.total_in() - in0) as usize..];
            // A sync flush is complete once it left room to spare.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
            out.reserve(256);
        }
    }
}

/// Takes one whole frame off the front of `buf`; None until one is there.
pub fn read_frame(
    buf: &mut BytesMut,
    headers: &mut HeaderDecoder,
) -> Result<Option<Frame>, SpdyError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let first = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let flags = buf[4];
    let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
    let control = first & 0x8000_0000 != 0;
    if control && len > MAX_CONTROL {
        return Err(SpdyError::TooLarge {
            len,
            max: MAX_CONTROL,
        });
    }
    if buf.len() < 8 + len {
        buf.reserve(8 + len - buf.len());
        return Ok(None);
    }
    buf.advance(8);
    let mut p = buf.split_to(len).freeze();
    if !control {
        return Ok(Some(Frame::Data {
            stream_id: first & 0x7fff_ffff,
            flags,
            data: p,
        }));
    }
    let version = ((first >> 16) & 0x7fff) as u16;
    if version != VERSION {
        return Err(SpdyError::Version(version));
    }
    let kind = (first & 0xffff) as u16;
    let need = |name: &'static str, n: usize, p: &Bytes| {
        if p.len() < n {
            Err(malformed(
                name,
                format!("{} bytes, at least {n} expected", p.len()),
            ))
        } else {
            Ok(())
        }
    };
    let frame = match kind {
        SYN_STREAM => {
            need("SYN_STREAM", 10, &p)?;
            let stream_id = p.get_u32() & 0x7fff_ffff;
            let associated = p.get_u32() & 0x7fff_ffff;
            let priority = p.get_u8() >> 5;
            let _slot = p.get_u8();
            if stream_id == 0 {
                return Err(malformed("SYN_STREAM", "stream id 0"));
            }
            Frame::SynStream {
                stream_id,
                associated,
                priority,
                flags,
                headers: headers.decode(&p)?,
            }
        }
        SYN_REPLY | HEADERS => {
            let name = if kind == SYN_REPLY {
                "SYN_REPLY"
            } else {
                "HEADERS"
            };
            need(name, 4, &p)?;
            let stream_id = p.get_u32() & 0x7fff_ffff;
            let h = headers.decode(&p)?;
            if kind == SYN_REPLY {
                Frame::SynReply {
                    stream_id,
                    flags,
                    headers: h,
                }
            } else {
                Frame::Headers {
                    stream_id,
                    flags,
                    headers: h,
                }
            }
        }
        RST_STREAM => {
            need("RST_STREAM", 8, &p)?;
            Frame::RstStream {
                stream_id: p.get_u32() & 0x7fff_ffff,
                status: p.get_u32(),
            }
        }
        SETTINGS => {
            need("SETTINGS", 4, &p)?;
            let n = p.get_u32() as usize;
            if p.len() != n.saturating_mul(8) {
                return Err(malformed(
                    "SETTINGS",
                    format!("{n} entries in {} bytes", p.len()),
                ));
            }
            let entries = (0..n)
                .map(|_| {
                    let fid = p.get_u32();
                    ((fid >> 24) as u8, fid & 0xff_ffff, p.get_u32())
                })
                .collect();
            Frame::Settings { flags, entries }
        }
        PING => {
            need("PING", 4, &p)?;
            Frame::Ping { id: p.get_u32() }
        }
        GOAWAY => {
            need("GOAWAY", 4, &p)?;
            let last_good = p.get_u32() & 0x7fff_ffff;
            // SPDY/2 peers send no status.
            let status = if p.len() >= 4 { p.get_u32() } else { 0 };
            Frame::GoAway { last_good, status }
        }
        WINDOW_UPDATE => {
            need("WINDOW_UPDATE", 8, &p)?;
            Frame::WindowUpdate {
                stream_id: p.get_u32() & 0x7fff_ffff,
                delta: p.get_u32() & 0x7fff_ffff,
            }
        }
        kind => Frame::Unknown { kind },
    };
    Ok(Some(frame))
}

fn control(out: &mut Vec<u8>, kind: u16, flags: u8, payload: &[u8]) {
    out.extend_from_slice(&(0x8000u16 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(payload);
}

/// `frame`'s bytes (header blocks through `headers`). Data longer than a
/// frame can carry is the caller's to split ([`MAX_DATA_WRITE`]).
pub fn write_frame(frame: &Frame, headers: &mut HeaderEncoder) -> Result<Vec<u8>, SpdyError> {
    let mut out = Vec::new();
    match frame {
        Frame::SynStream {
            stream_id,
            associated,
            priority,
            flags,
            headers: h,
        } => {
            let mut p = Vec::new();
            p.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
            p.extend_from_slice(&(associated & 0x7fff_ffff).to_be_bytes());
            p.push((priority & 7) << 5);
            p.push(0);
            p.extend_from_slice(&headers.encode(h)?);
            control(&mut out, SYN_STREAM, *flags, &p);
        }
        Frame::SynReply {
            stream_id,
            flags,
            headers: h,
        }
        | Frame::Headers {
            stream_id,
            flags,
            headers: h,
        } => {
            let kind = if matches!(frame, Frame::SynReply { .. }) {
                SYN_REPLY
            } else {
                HEADERS
            };
            let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
            p.extend_from_slice(&headers.encode(h)?);
            control(&mut out, kind, *flags, &p);
        }
        Frame::RstStream { stream_id, status } => {
            let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
            p.extend_from_slice(&status.to_be_bytes());
            control(&mut out, RST_STREAM, 0, &p);
        }
        Frame::Settings { flags, entries } => {
            let mut p = (entries.len() as u32).to_be_bytes().to_vec();
            for (f, id, v) in entries {
                p.extend_from_slice(&((u32::from(*f) << 24) | (id & 0xff_ffff)).to_be_bytes());
                p.extend_from_slice(&v.to_be_bytes());
            }
            control(&mut out, SETTINGS, *flags, &p);
        }
        Frame::Ping { id } => control(&mut out, PING, 0, &id.to_be_bytes()),
        Frame::GoAway { last_good, status } => {
            let mut p = (last_good & 0x7fff_ffff).to_be_bytes().to_vec();
            p.extend_from_slice(&status.to_be_bytes());
            control(&mut out, GOAWAY, 0, &p);
        }
        Frame::WindowUpdate { stream_id, delta } => {
            let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
            p.extend_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
            control(&mut out, WINDOW_UPDATE, 0, &p);
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            if data.len() >= 1 << 24 {
                return Err(malformed(
                    "DATA",
                    format!("{} bytes do not fit in one frame", data.len()),
                ));
            }
            out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
            out.push(*flags);
            out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(data);
        }
        Frame::Unknown { kind } => {
            return Err(malformed("unknown", format!("type {kind} is not written")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
