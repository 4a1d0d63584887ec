//! A terminal's master between processes: libcontainer sends the master of
//! the pseudo-terminal it opened inside the container over a console
//! socket (SCM_RIGHTS, as runc's `--console-socket`); `shim-exec` receives
//! it and passes it on to the agent over an inherited socket the same way.

use std::{
    io::{IoSlice, IoSliceMut},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::net::UnixStream,
    },
};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Sends `fd` on `sock` with one byte of data.
pub fn send_fd(sock: &UnixStream, fd: RawFd) -> std::io::Result<()> {
    let iov = [IoSlice::new(b"m")];
    let fds = [fd];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}

/// Receives one descriptor from `sock`; `None` when the other side closed
/// without sending one.
pub fn recv_fd(sock: &UnixStream) -> std::io::Result<Option<OwnedFd>> {
    let mut data = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other.map_err(std::io::Error::from)?,
        }
    };
    let mut got = None;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed `fd` in this process
                // for us; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_none() {
                    got = Some(owned);
                }
            }
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_crosses_a_socket_and_a_closed_socket_sends_none() {
        let (a, b) = UnixStream::pair().unwrap();
        let pty = nix::pty::openpty(None, None).unwrap();
        send_fd(&a, pty.master.as_raw_fd()).unwrap();
        let got = recv_fd(&b).unwrap().expect("a descriptor");
        // The same terminal: what is written to the slave reads from it.
        nix::unistd::write(&pty.slave, b"x").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(&got, &mut buf).unwrap(), 1);
        assert_eq!(&buf, b"x");
        drop(a);
        assert!(recv_fd(&b).unwrap().is_none());
    }
}
