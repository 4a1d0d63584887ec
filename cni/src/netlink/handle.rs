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

fn kernel(what: &dyn Fn() -> String, errno: i32) -> NetlinkError {
    NetlinkError::Kernel {
        what: what(),
        source: io::Error::from_raw_os_error(errno),
    }
}
