use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress};

use super::*;

fn h(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// A raw header block as the draft lays it out.
fn block(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut b = (pairs.len() as u32).to_be_bytes().to_vec();
    for (n, v) in pairs {
        b.extend_from_slice(&(n.len() as u32).to_be_bytes());
        b.extend_from_slice(n.as_bytes());
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    b
}

#[test]
fn the_dictionary_is_spdy3s() {
    // 1423 bytes (the draft's size), starting "\0\0\0\x07options" and
    // ending "enq=0.".
    assert_eq!(dictionary::DICTIONARY.len(), 1423);
    assert_eq!(&dictionary::DICTIONARY[..11], b"\0\0\0\x07options");
    assert!(dictionary::DICTIONARY.ends_with(b",*,enq=0."));
    // Its Adler-32, which every SPDY/3 zlib stream names in its header
    // (FDICT): the one in kubectl's first SYN_STREAM (see below).
    let mut c = Compress::new(Compression::default(), true);
    assert_eq!(
        c.set_dictionary(&dictionary::DICTIONARY).unwrap(),
        0xe3c6_a7c2
    );
}

/// Bytes of control frames kubectl 1.32 wrote on a port-forward tunnel
/// (`kubectl port-forward -v=8` logs what its tunnel writes): the SYN_STREAM
/// of its first error stream for port 9000, request 0, then the data
/// stream's, whose header block reuses the same zlib stream.
const KUBECTL_ERROR_SYN: &[u8] = include_bytes!("fixtures/kubectl-syn-error.bin");
const KUBECTL_DATA_SYN: &[u8] = include_bytes!("fixtures/kubectl-syn-data.bin");

#[test]
fn kubectl_s_syn_streams_are_read() {
    let mut dec = HeaderDecoder::default();
    let mut buf = BytesMut::from(KUBECTL_ERROR_SYN);
    let f = read_frame(&mut buf, &mut dec).unwrap().unwrap();
    assert!(buf.is_empty());
    let Frame::SynStream {
        stream_id, headers, ..
    } = f
    else {
        panic!("{f:?}")
    };
    assert_eq!(stream_id, 1);
    assert_eq!(Frame::header(&headers, "streamtype"), Some("error"));
    assert_eq!(Frame::header(&headers, "port"), Some("9000"));
    assert_eq!(Frame::header(&headers, "requestid"), Some("0"));
    let mut buf = BytesMut::from(KUBECTL_DATA_SYN);
    let f = read_frame(&mut buf, &mut dec).unwrap().unwrap();
    let Frame::SynStream {
        stream_id, headers, ..
    } = f
    else {
        panic!("{f:?}")
    };
    assert_eq!(stream_id, 3);
    assert_eq!(Frame::header(&headers, "streamtype"), Some("data"));
    assert_eq!(Frame::header(&headers, "requestid"), Some("0"));
}

#[test]
fn frames_arrive_in_pieces_and_several_at_once() {
    let mut enc = HeaderEncoder::default();
    let frames = vec![
        Frame::SynStream {
            stream_id: 1,
            associated: 0,
            priority: 0,
            flags: 0,
            headers: h(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
        },
        Frame::Data {
            stream_id: 3,
            flags: FLAG_FIN,
            data: Bytes::from_static(b"hello"),
        },
        Frame::Ping { id: 7 },
        Frame::RstStream {
            stream_id: 3,
            status: CANCEL,
        },
        Frame::GoAway {
            last_good: 2,
            status: 0,
        },
        Frame::WindowUpdate {
            stream_id: 3,
            delta: 1000,
        },
        Frame::Settings {
            flags: 0,
            entries: vec![(0, 7, 65536)],
        },
        Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: h(&[("a", "1"), ("a", "2")]),
        },
    ];
    let mut wire = Vec::new();
    for f in &frames {
        wire.extend(write_frame(f, &mut enc).unwrap());
    }
    // Fed a byte at a time: each frame comes out once whole.
    let mut dec = HeaderDecoder::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in &wire {
        buf.extend_from_slice(&[*b]);
        while let Some(f) = read_frame(&mut buf, &mut dec).unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, frames);
}

#[test]
fn known_bytes_of_fixed_frames() {
    let mut enc = HeaderEncoder::default();
    // PING 5: control bit, version 3, type 6, length 4.
    assert_eq!(
        write_frame(&Frame::Ping { id: 5 }, &mut enc).unwrap(),
        [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 5]
    );
    // DATA on stream 3 with FIN.
    assert_eq!(
        write_frame(
            &Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"ab")
            },
            &mut enc
        )
        .unwrap(),
        [0, 0, 0, 3, 1, 0, 0, 2, b'a', b'b']
    );
    // RST_STREAM 3 CANCEL.
    assert_eq!(
        write_frame(
            &Frame::RstStream {
                stream_id: 3,
                status: CANCEL
            },
            &mut enc
        )
        .unwrap(),
        [0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 5]
    );
}

#[test]
fn a_reply_is_a_zlib_stream_with_spdy3s_dictionary() {
    // What a peer's inflate (zlib, with the dictionary) reads back from
    // the header block of the SYN_REPLY written here.
    let mut enc = HeaderEncoder::default();
    let bytes = write_frame(
        &Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: Vec::new(),
        },
        &mut enc,
    )
    .unwrap();
    assert_eq!(&bytes[..4], [0x80, 3, 0, 2]);
    let zblock = &bytes[12..];
    // zlib header with FDICT, then the dictionary's Adler-32.
    assert_eq!(zblock[1] & 0x20, 0x20, "FDICT set");
    assert_eq!(&zblock[2..6], 0xe3c6_a7c2u32.to_be_bytes());
    let mut d = flate2::Decompress::new(true);
    let mut out = Vec::with_capacity(64);
    let e = d
        .decompress_vec(zblock, &mut out, flate2::FlushDecompress::Sync)
        .unwrap_err();
    assert_eq!(e.needs_dictionary(), Some(0xe3c6_a7c2));
    d.set_dictionary(&dictionary::DICTIONARY).unwrap();
    let rest = &zblock[d.total_in() as usize..];
    d.decompress_vec(rest, &mut out, flate2::FlushDecompress::Sync)
        .unwrap();
    assert_eq!(out, block(&[]));
}

#[test]
fn a_foreign_compressor_s_blocks_are_read_across_frames() {
    // Another zlib writer, primed and sync-flushed per block as spdystream
    // does, at its best compression.
    let mut c = Compress::new(Compression::best(), true);
    c.set_dictionary(&dictionary::DICTIONARY).unwrap();
    let mut dec = HeaderDecoder::default();
    for (i, pairs) in [
        vec![
            ("streamtype", "error"),
            ("port", "8080"),
            ("requestid", "0"),
        ],
        vec![("streamtype", "data"), ("port", "8080"), ("requestid", "0")],
        vec![("x", "a\0b")],
    ]
    .iter()
    .enumerate()
    {
        let raw = block(pairs);
        let mut z = Vec::with_capacity(raw.len() + 64);
        c.compress_vec(&raw, &mut z, FlushCompress::Sync).unwrap();
        let got = dec.decode(&z).unwrap();
        if i == 2 {
            assert_eq!(got, h(&[("x", "a"), ("x", "b")]));
        } else {
            assert_eq!(got, h(pairs));
        }
    }
}

#[test]
fn bad_input_is_refused_by_name() {
    let mut dec = HeaderDecoder::default();
    // Version 2.
    let mut buf = BytesMut::from(&[0x80u8, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
    assert_eq!(read_frame(&mut buf, &mut dec), Err(SpdyError::Version(2)));
    // A control frame over the limit is refused before it is buffered.
    let mut buf = BytesMut::from(&[0x80u8, 3, 0, 1, 0, 0xff, 0xff, 0xff][..]);
    assert!(matches!(
        read_frame(&mut buf, &mut dec),
        Err(SpdyError::TooLarge { .. })
    ));
    // A PING too short.
    let mut buf = BytesMut::from(&[0x80u8, 3, 0, 6, 0, 0, 0, 2, 0, 0][..]);
    let e = read_frame(&mut buf, &mut dec).unwrap_err().to_string();
    assert!(e.contains("PING"), "{e}");
    // A header block that is not zlib.
    let mut buf = BytesMut::from(
        &[
            0x80u8, 3, 0, 1, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4,
        ][..],
    );
    let e = read_frame(&mut buf, &mut dec).unwrap_err();
    assert!(matches!(e, SpdyError::Headers(_)), "{e}");
    // A truncated block.
    assert!(parse_block(&[0, 0, 0, 1, 0, 0, 0, 5, b'a']).is_err());
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    let mut c = Compress::new(Compression::best(), true);
    c.set_dictionary(&dictionary::DICTIONARY).unwrap();
    let raw = vec![b'a'; MAX_HEADER_BLOCK * 2];
    let mut z = Vec::with_capacity(raw.len());
    c.compress_vec(&raw, &mut z, FlushCompress::Sync).unwrap();
    let e = HeaderDecoder::default().decode(&z).unwrap_err();
    assert!(e.to_string().contains("decompressed"), "{e}");
}
