//! A route-netlink socket bound to one network namespace, with the request
//! and dump exchanges every object module uses.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::NetlinkError;
use crate::ns::NetNs;

/// Receive buffer size: the kernel sizes dump batches to the reader's buffer
/// (up to 32 KiB per skb), and a single message is far smaller.
const RECV_BUF: usize = 64 * 1024;

/// A synchronous rtnetlink socket. The socket stays bound to the namespace
/// it was opened in, whatever thread uses it afterwards.
pub struct Handle {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Handle {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Self, NetlinkError> {
        let sock_err = |source| NetlinkError::Socket {
            what: "opening rtnetlink".into(),
            source,
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(sock_err)?;
        socket.bind_auto().map_err(sock_err)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(sock_err)?;
        // Lets dumps be filtered by the kernel (e.g. addresses of one
        // link); older kernels without it still answer, just unfiltered,
        // and every list function filters again.
        let _ = socket.set_netlink_get_strict_chk(true);
        Ok(Self {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Opens a socket inside `ns` (on a short-lived thread that entered it);
    /// the returned handle acts in `ns` from any thread.
    pub fn in_netns(ns: &NetNs) -> Result<Self, NetlinkError> {
        ns.run(Self::new).map_err(|source| NetlinkError::Netns {
            path: ns.path().to_path_buf(),
            source,
        })?
    }

    /// Sends a request that changes state (NEW/DEL/SET) and waits for the
    /// kernel's acknowledgement.
    pub fn request(
        &mut self,
        what: impl Fn() -> String,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), NetlinkError> {
        self.exchange(&what, msg, flags | NLM_F_REQUEST | NLM_F_ACK, false)
            .map(drop)
    }

    /// Sends several change requests in one message and waits for every
    /// acknowledgement: one round trip instead of one per request. The
    /// kernel handles them in order and answers each; the first failure (in
    /// request order) is returned, after all answers have been read.
    pub fn apply(&mut self, changes: &[&dyn Change]) -> Result<(), NetlinkError> {
        if changes.is_empty() {
            return Ok(());
        }
        let first = self.seq.wrapping_add(1);
        let mut out = Vec::new();
        for change in changes {
            self.seq = self.seq.wrapping_add(1);
            let mut header = NetlinkHeader::default();
            header.flags = change.flags() | NLM_F_REQUEST | NLM_F_ACK;
            header.sequence_number = self.seq;
            let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(change.message()));
            packet.finalize();
            let start = out.len();
            out.resize(start + packet.buffer_len(), 0);
            packet.serialize(&mut out[start..]);
            out.resize((out.len() + 3) & !3, 0);
        }
        let what = |i: usize| changes[i].describe();
        self.socket
            .send(&out, 0)
            .map_err(|source| NetlinkError::Socket {
                what: what(0),
                source,
            })?;
        let mut results: Vec<Option<Result<(), NetlinkError>>> =
            changes.iter().map(|_| None).collect();
        let mut pending = changes.len();
        for _ in 0..100_000 {
            if pending == 0 {
                break;
            }
            self.buf.clear();
            let n = self
                .socket
                .recv(&mut self.buf, 0)
                .map_err(|source| NetlinkError::Socket {
                    what: what(0),
                    source,
                })?;
            let mut off = 0;
            while off + 16 <= n {
                let len = NetlinkBuffer::new_checked(&self.buf[off..n])
                    .map_err(|e| NetlinkError::Decode {
                        what: what(0),
                        reason: e.to_string(),
                    })?
                    .length() as usize;
                if len < 16 || off + len > n {
                    return Err(NetlinkError::Decode {
                        what: what(0),
                        reason: format!("bad message length {len}"),
                    });
                }
                let parsed =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..off + len])
                        .map_err(|e| NetlinkError::Decode {
                        what: what(0),
                        reason: e.to_string(),
                    })?;
                off += (len + 3) & !3;
                let i = parsed.header.sequence_number.wrapping_sub(first) as usize;
                if i >= changes.len() || results[i].is_some() {
                    continue;
                }
                if let NetlinkPayload::Error(err) = parsed.payload {
                    results[i] = Some(match err.code {
                        Some(code) => Err(kernel(&|| what(i), -code.get())),
                        None => Ok(()),
                    });
                    pending -= 1;
                }
            }
        }
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(NetlinkError::Unexpected {
                        what: what(i),
                        reason: "no acknowledgement".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Sends a GET for one object and returns the kernel's answers to it.
    pub fn get(
        &mut self,
        what: impl Fn() -> String,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.exchange(&what, msg, NLM_F_REQUEST | NLM_F_ACK, false)
    }

    /// Sends a dump request and returns every object of the dump.
    pub fn dump(
        &mut self,
        what: impl Fn() -> String,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.exchange(&what, msg, NLM_F_REQUEST | NLM_F_DUMP, true)
    }

    fn exchange(
        &mut self,
        what: &dyn Fn() -> String,
        msg: RouteNetlinkMessage,
        flags: u16,
        dump: bool,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket
            .send(&out, 0)
            .map_err(|source| NetlinkError::Socket {
                what: what(),
                source,
            })?;

        let mut answers = Vec::new();
        // Bounded: a dump of even a huge table ends long before this.
        for _ in 0..100_000 {
            self.buf.clear();
            let n = self
                .socket
                .recv(&mut self.buf, 0)
                .map_err(|source| NetlinkError::Socket {
                    what: what(),
                    source,
                })?;
            let mut off = 0;
            while off + 16 <= n {
                let len = NetlinkBuffer::new_checked(&self.buf[off..n])
                    .map_err(|e| NetlinkError::Decode {
                        what: what(),
                        reason: e.to_string(),
                    })?
                    .length() as usize;
                if len < 16 || off + len > n {
                    return Err(NetlinkError::Decode {
                        what: what(),
                        reason: format!("bad message length {len}"),
                    });
                }
                let bytes = &self.buf[off..off + len];
                off += (len + 3) & !3;
                let parsed =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes).map_err(|e| {
                        NetlinkError::Decode {
                            what: what(),
                            reason: e.to_string(),
                        }
                    })?;
                if parsed.header.sequence_number != seq {
                    continue; // a late answer to an earlier request
                }
                match parsed.payload {
                    NetlinkPayload::Done(done) => {
                        if done.code < 0 {
                            return Err(kernel(what, -done.code));
                        }
                        return Ok(answers);
                    }
                    NetlinkPayload::Error(err) => {
                        return match err.code {
                            Some(code) => Err(kernel(what, -code.get())),
                            None if dump => Err(NetlinkError::Unexpected {
                                what: what(),
                                reason: "acknowledgement in the middle of a dump".into(),
                            }),
                            None => Ok(answers),
                        };
                    }
                    NetlinkPayload::InnerMessage(inner) => answers.push(inner),
                    NetlinkPayload::Noop | NetlinkPayload::Overrun(_) => {}
                    _ => {}
                }
            }
        }
        Err(NetlinkError::Unexpected {
            what: what(),
            reason: "no end to the kernel's answer".into(),
        })
    }
}

/// A change request that can be sent alone (`execute`) or batched with
/// others ([`Handle::apply`]).
pub trait Change {
    fn message(&self) -> RouteNetlinkMessage;
    /// NLM_F_CREATE / NLM_F_REPLACE / NLM_F_EXCL as the request needs.
    fn flags(&self) -> u16;
    /// What the request does, for errors.
    fn describe(&self) -> String;
}

fn kernel(what: &dyn Fn() -> String, errno: i32) -> NetlinkError {
    NetlinkError::Kernel {
        what: what(),
        source: io::Error::from_raw_os_error(errno),
    }
}
