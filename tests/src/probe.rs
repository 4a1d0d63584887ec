//! Traffic checks between network namespaces the tests made (pods, nodes,
//! the lab's external client): a TCP and a UDP echo round trip and an ICMP
//! ping, each bounded by a timeout. Sockets are opened on threads that
//! entered the namespaces, so nothing is sent from the host's namespace.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    process::Stdio,
    time::Duration,
};

use anyhow::Context;
use keel_sys::ns::NetNs;

const TIMEOUT: Duration = Duration::from_secs(3);

pub fn open(netns: &str) -> anyhow::Result<NetNs> {
    NetNs::open(NetNs::named_path(netns)).with_context(|| format!("opening netns {netns}"))
}

/// One TCP connection from `src` to a listener in `dst` at `ip`: the bytes
/// sent come back.
pub fn tcp(src: &NetNs, dst: &NetNs, ip: Ipv4Addr) -> anyhow::Result<()> {
    tcp_source(src, dst, ip).map(drop)
}

/// [`tcp`], returning the address the listener saw the connection come
/// from (the client's own, or the one a NAT on the way put in its place).
pub fn tcp_source(src: &NetNs, dst: &NetNs, ip: Ipv4Addr) -> anyhow::Result<Ipv4Addr> {
    let listener = dst.run(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)))??;
    let port = listener.local_addr()?.port();
    std::thread::scope(|s| {
        let server = s.spawn(move || -> anyhow::Result<Ipv4Addr> {
            listener.set_nonblocking(false)?;
            let (mut c, from) = accept_with_timeout(&listener)?;
            c.set_read_timeout(Some(TIMEOUT))?;
            let mut buf = [0u8; 64];
            let n = c.read(&mut buf)?;
            c.write_all(&buf[..n])?;
            match from.ip() {
                std::net::IpAddr::V4(a) => Ok(a),
                other => anyhow::bail!("an IPv6 peer {other}"),
            }
        });
        let client = src.run(|| -> anyhow::Result<()> {
            let mut c = TcpStream::connect_timeout(&SocketAddr::from((ip, port)), TIMEOUT)?;
            c.set_read_timeout(Some(TIMEOUT))?;
            c.write_all(b"keel tcp probe")?;
            let mut buf = [0u8; 64];
            let n = c.read(&mut buf)?;
            anyhow::ensure!(&buf[..n] == b"keel tcp probe", "echo mismatch");
            Ok(())
        });
        let client = client.map_err(anyhow::Error::from).and_then(|r| r);
        let server = server
            .join()
            .map_err(|_| anyhow::anyhow!("server thread panicked"))?;
        client.with_context(|| format!("TCP to {ip}:{port}"))?;
        server.with_context(|| format!("TCP server on {ip}:{port}"))
    })
}

fn accept_with_timeout(l: &TcpListener) -> anyhow::Result<(TcpStream, SocketAddr)> {
    l.set_nonblocking(true)?;
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        match l.accept() {
            Ok((c, a)) => {
                c.set_nonblocking(false)?;
                return Ok((c, a));
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).context("accepting"),
        }
    }
}

/// One UDP datagram from `src` to `dst` at `ip`, echoed back to its sender.
pub fn udp(src: &NetNs, dst: &NetNs, ip: Ipv4Addr) -> anyhow::Result<()> {
    let server = dst.run(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))??;
    let port = server.local_addr()?.port();
    server.set_read_timeout(Some(TIMEOUT))?;
    std::thread::scope(|s| {
        let srv = s.spawn(move || -> anyhow::Result<()> {
            let mut buf = [0u8; 64];
            let (n, from) = server.recv_from(&mut buf)?;
            server.send_to(&buf[..n], from)?;
            Ok(())
        });
        let client = src.run(|| -> anyhow::Result<()> {
            let c = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            c.set_read_timeout(Some(TIMEOUT))?;
            c.send_to(b"keel udp probe", (ip, port))?;
            let mut buf = [0u8; 64];
            let (n, from) = c.recv_from(&mut buf)?;
            anyhow::ensure!(&buf[..n] == b"keel udp probe", "echo mismatch");
            anyhow::ensure!(from.ip() == ip, "reply came from {from}, not {ip}");
            Ok(())
        });
        let client = client.map_err(anyhow::Error::from).and_then(|r| r);
        let srv = srv
            .join()
            .map_err(|_| anyhow::anyhow!("server thread panicked"))?;
        client.with_context(|| format!("UDP to {ip}:{port}"))?;
        srv.with_context(|| format!("UDP server on {ip}:{port}"))
    })
}

/// One UDP datagram from `src` to a socket in `dst` at `ip`: the address it
/// arrived from (no answer is sent, so this works where a reply could not
/// be routed back).
pub fn udp_source(src: &NetNs, dst: &NetNs, ip: Ipv4Addr) -> anyhow::Result<Ipv4Addr> {
    let server = dst.run(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))??;
    let port = server.local_addr()?.port();
    server.set_read_timeout(Some(TIMEOUT))?;
    src.run(|| -> anyhow::Result<()> {
        let c = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        c.send_to(b"keel udp source probe", (ip, port))?;
        Ok(())
    })?
    .with_context(|| format!("UDP to {ip}:{port}"))?;
    let mut buf = [0u8; 64];
    let (n, from) = server
        .recv_from(&mut buf)
        .with_context(|| format!("UDP server on {ip}:{port}"))?;
    anyhow::ensure!(&buf[..n] == b"keel udp source probe", "datagram mismatch");
    match from.ip() {
        std::net::IpAddr::V4(a) => Ok(a),
        other => anyhow::bail!("an IPv6 peer {other}"),
    }
}

/// `ping -c 1` from `src` (Debian's iputils-ping, inside the namespace).
pub fn ping(src: &NetNs, ip: Ipv4Addr) -> anyhow::Result<()> {
    let out = src
        .command("ping")?
        .args(["-c", "1", "-W", "3", &ip.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running ping")?;
    anyhow::ensure!(
        out.status.success(),
        "ping {ip}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// TCP, UDP and ICMP from `src` to `dst` at `ip`.
pub fn all(src: &NetNs, dst: &NetNs, ip: Ipv4Addr) -> anyhow::Result<()> {
    tcp(src, dst, ip)?;
    udp(src, dst, ip)?;
    ping(src, ip)
}
