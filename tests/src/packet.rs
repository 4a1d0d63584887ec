//! Packets for `BPF_PROG_TEST_RUN` fixtures: Ethernet + IPv4 + TCP/UDP
//! built byte by byte with checksums computed from scratch (RFC 1071),
//! independently of the kernel's incremental updates, so a fixture's
//! expected output is an exact packet.

use std::net::Ipv4Addr;

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;
pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;

/// `02:00:00:00:00:01`, as `ip` takes it.
pub fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A TCP or UDP packet over IPv4 in an Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkt {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub ttl: u8,
    pub id: u16,
    /// TCP flags (TCP only).
    pub flags: u8,
    pub payload: Vec<u8>,
    /// UDP only: send a zero ("no checksum") UDP checksum.
    pub udp_no_csum: bool,
}

impl Pkt {
    pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Self {
        Self {
            dst_mac: [0x02, 0, 0, 0, 0, 0x01],
            src_mac: [0x02, 0, 0, 0, 0, 0x09],
            src: src.parse().expect("src"),
            dst: dst.parse().expect("dst"),
            sport,
            dport,
            proto: TCP,
            ttl: 64,
            id: 0x1234,
            flags,
            payload: Vec::new(),
            udp_no_csum: false,
        }
    }

    pub fn udp(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Self {
        Self {
            proto: UDP,
            flags: 0,
            payload: payload.to_vec(),
            ..Self::tcp(src, sport, dst, dport, 0)
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let l4 = self.l4();
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&self.id.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = self.ttl;
        ip[9] = self.proto;
        ip[12..16].copy_from_slice(&self.src.octets());
        ip[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut out = Vec::new();
        out.extend_from_slice(&self.dst_mac);
        out.extend_from_slice(&self.src_mac);
        out.extend_from_slice(&[0x08, 0x00]);
        out.extend_from_slice(&ip);
        out.extend_from_slice(&l4);
        out
    }

    fn l4(&self) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&self.sport.to_be_bytes());
        l4.extend_from_slice(&self.dport.to_be_bytes());
        let csum_at = if self.proto == TCP {
            l4.extend_from_slice(&1000u32.to_be_bytes()); // seq
            l4.extend_from_slice(&0u32.to_be_bytes()); // ack
            l4.push(5 << 4); // data offset
            l4.push(self.flags);
            l4.extend_from_slice(&64240u16.to_be_bytes()); // window
            l4.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
            16
        } else {
            l4.extend_from_slice(&((8 + self.payload.len()) as u16).to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
            6
        };
        l4.extend_from_slice(&self.payload);
        if self.proto == UDP && self.udp_no_csum {
            return l4;
        }
        let mut c =
            checksum(&[pseudo(self.src, self.dst, self.proto, l4.len()), l4.clone()].concat());
        if self.proto == UDP && c == 0 {
            c = 0xffff;
        }
        l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
        l4
    }
}

fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.push(0);
    p.push(proto);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p
}

/// The Internet checksum of `data` (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Checks every checksum of an Ethernet/IPv4 frame (IP header, and TCP,
/// UDP — unless zero — or ICMP); names the first that is wrong.
pub fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let ip = frame.get(14..34).ok_or("frame too short for IPv4")?;
    if checksum(ip) != 0 {
        return Err(format!("IP header checksum wrong: {:02x?}", &ip[10..12]));
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let l4 = frame
        .get(34..14 + total)
        .ok_or("frame shorter than IP total length")?;
    let (src, dst) = (
        Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
    );
    match ip[9] {
        TCP => {
            if checksum(&[pseudo(src, dst, TCP, l4.len()), l4.to_vec()].concat()) != 0 {
                return Err("TCP checksum wrong".into());
            }
        }
        UDP => {
            if l4[6..8] != [0, 0]
                && checksum(&[pseudo(src, dst, UDP, l4.len()), l4.to_vec()].concat()) != 0
            {
                return Err("UDP checksum wrong".into());
            }
        }
        ICMP => {
            if checksum(l4) != 0 {
                return Err("ICMP checksum wrong".into());
            }
        }
        p => return Err(format!("protocol {p}")),
    }
    Ok(())
}

/// An ICMP "port unreachable" from `from` to `to` quoting `original`
/// (its IP header and first 8 bytes), with MACs swapped, as a router sends.
pub fn icmp_port_unreachable(original: &Pkt) -> Vec<u8> {
    let orig = original.bytes();
    let mut icmp = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&orig[14..14 + 28]);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[1] = 0xc0;
    ip[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = ICMP;
    ip[12..16].copy_from_slice(&original.dst.octets());
    ip[16..20].copy_from_slice(&original.src.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut out = Vec::new();
    out.extend_from_slice(&original.src_mac);
    out.extend_from_slice(&original.dst_mac);
    out.extend_from_slice(&[0x08, 0x00]);
    out.extend_from_slice(&ip);
    out.extend_from_slice(&icmp);
    out
}

/// An ICMP error of `icmp_type`/`code` (`rest`: the 4 bytes after its
/// checksum, e.g. the next-hop MTU of "fragmentation needed") from `src`
/// to `dst` with TTL `ttl`, quoting `quote` (an IP header and what follows
/// it), in a frame `macs` = (dst, src). Checksums computed from scratch.
#[expect(
    clippy::too_many_arguments,
    reason = "each is one field of the frame, named at the call"
)]
pub fn icmp_error(
    macs: ([u8; 6], [u8; 6]),
    src: &str,
    dst: &str,
    ttl: u8,
    icmp_type: u8,
    code: u8,
    rest: [u8; 4],
    quote: &[u8],
) -> Vec<u8> {
    let mut icmp = vec![icmp_type, code, 0, 0];
    icmp.extend_from_slice(&rest);
    icmp.extend_from_slice(quote);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[1] = 0xc0;
    ip[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    ip[8] = ttl;
    ip[9] = ICMP;
    let (s, d): (Ipv4Addr, Ipv4Addr) = (src.parse().expect("src"), dst.parse().expect("dst"));
    ip[12..16].copy_from_slice(&s.octets());
    ip[16..20].copy_from_slice(&d.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut out = Vec::new();
    out.extend_from_slice(&macs.0);
    out.extend_from_slice(&macs.1);
    out.extend_from_slice(&[0x08, 0x00]);
    out.extend_from_slice(&ip);
    out.extend_from_slice(&icmp);
    out
}

/// A readable diff of two frames for assertion messages.
pub fn hexdiff(got: &[u8], want: &[u8]) -> String {
    let mut s = format!("got {} bytes, want {}\n", got.len(), want.len());
    for i in 0..got.len().max(want.len()) {
        let (g, w) = (got.get(i), want.get(i));
        if g != w {
            s.push_str(&format!("  byte {i}: got {g:02x?} want {w:02x?}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests;
