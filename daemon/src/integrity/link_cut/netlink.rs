//! Entering the container's network namespace and setting its links down
//! over rtnetlink (Linux): see [`super`]'s invariant.

use std::{
    fs::File,
    os::fd::{AsFd, OwnedFd},
    time::Duration,
};

use nix::{
    fcntl::{OFlag, open, openat},
    libc,
    sched::{CloneFlags, setns},
    sys::{
        socket::{
            AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto,
            setsockopt, socket, sockopt::ReceiveTimeout,
        },
        stat::{Mode, fstat},
        time::TimeVal,
    },
};

use super::LinkCutError;
use crate::integrity::frozen::names_container;

/// How long the kernel may take to acknowledge one link change.
const ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the process whose `/proc/<pid>` folder is `process` sits in
/// the cgroup of container `container_id` itself: some line of its
/// `cgroup` file ends in the id (`<id>`, or `…-<id>.scope` under systemd),
/// the way `frozen` judges it — not a cgroup the container made below its
/// own and named after another container.
fn in_containers_cgroup(process: &OwnedFd, container_id: &str) -> std::io::Result<bool> {
    let file: OwnedFd = openat(
        process,
        "cgroup",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut lines = String::new();
    std::io::Read::read_to_string(&mut File::from(file), &mut lines)?;
    Ok(lines.lines().any(|line| {
        line.splitn(3, ':')
            .nth(2)
            .is_some_and(|path| names_container(path, container_id))
    }))
}

/// The network namespace of `pid`, opened, once it is known to be the
/// container's and not the daemon's own.
fn container_namespace(pid: i32, container_id: &str) -> Result<OwnedFd, LinkCutError> {
    let process = |reason: String| LinkCutError::Process { pid, reason };
    if pid <= 0 || container_id.len() < 12 {
        return Err(process("no process known".to_owned()));
    }
    // One handle on the process: the kernel refuses lookups through it
    // once that process has exited, even if its pid is given to another
    // meanwhile — so the namespace and the cgroup read below are one
    // process's.
    let folder: OwnedFd = open(
        format!("/proc/{pid}").as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| process(err.to_string()))?;
    let namespace: OwnedFd = openat(
        &folder,
        "ns/net",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| process(err.to_string()))?;
    match in_containers_cgroup(&folder, container_id) {
        Ok(true) => {}
        Ok(false) => return Err(LinkCutError::NotTheContainer(pid)),
        Err(err) => return Err(process(err.to_string())),
    }
    let theirs = fstat(namespace.as_fd()).map_err(|err| process(err.to_string()))?;
    // Neither the daemon's own namespace nor the host's: under the unit's
    // PrivateNetwork= they differ, and a container on the host's network
    // (`network_mode: host`) shares the latter, which PID 1 holds.
    for never in ["/proc/self/ns/net", "/proc/1/ns/net"] {
        let other = File::open(never).map_err(|err| process(format!("{never}: {err}")))?;
        let other = fstat(other.as_fd()).map_err(|err| process(err.to_string()))?;
        if (theirs.st_dev, theirs.st_ino) == (other.st_dev, other.st_ino) {
            return Err(LinkCutError::HostNetwork);
        }
    }
    Ok(namespace)
}

/// An `RTM_NEWLINK` request clearing `IFF_UP` on link `index`.
fn link_down_request(index: u32, sequence: u32) -> Vec<u8> {
    const HEADER: usize = 16;
    const IFINFO: usize = 16;
    let length = u32::try_from(HEADER + IFINFO).unwrap_or(u32::MAX);
    let flags = u16::try_from(libc::NLM_F_REQUEST | libc::NLM_F_ACK).unwrap_or(0);
    let mut message = Vec::with_capacity(HEADER + IFINFO);
    message.extend_from_slice(&length.to_ne_bytes());
    message.extend_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
    message.extend_from_slice(&flags.to_ne_bytes());
    message.extend_from_slice(&sequence.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes());
    // struct ifinfomsg: family, pad, type, index, flags (none), change (IFF_UP).
    let up = u32::try_from(libc::IFF_UP).unwrap_or(1);
    message.extend_from_slice(&[0, 0]);
    message.extend_from_slice(&0u16.to_ne_bytes());
    message.extend_from_slice(&index.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes());
    message.extend_from_slice(&up.to_ne_bytes());
    message
}

/// The errno of a netlink acknowledgement (0 for success).
fn ack_errno(reply: &[u8]) -> Result<i32, String> {
    let field = |at: usize| reply.get(at..at + 4).and_then(|b| b.try_into().ok());
    let kind = reply
        .get(4..6)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_ne_bytes);
    match (kind, field(16)) {
        (Some(kind), Some(error)) if i32::from(kind) == libc::NLMSG_ERROR => {
            Ok(-i32::from_ne_bytes(error))
        }
        _ => Err("the kernel sent no acknowledgement".to_owned()),
    }
}

/// In the calling thread's namespace: every link but loopback set down.
fn cut_here() -> Result<Vec<String>, LinkCutError> {
    let kernel = |err: nix::Error| LinkCutError::Kernel(err.to_string());
    let links = nix::net::if_::if_nameindex().map_err(kernel)?;
    let route = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(kernel)?;
    let timeout = TimeVal::new(i64::try_from(ACK_TIMEOUT.as_secs()).unwrap_or(1), 0);
    setsockopt(&route, ReceiveTimeout, &timeout).map_err(kernel)?;
    let kernel_address = NetlinkAddr::new(0, 0);
    let mut cut = Vec::new();
    for (sequence, link) in (1u32..).zip(links.iter()) {
        let name = link.name().to_string_lossy().into_owned();
        if name == "lo" {
            continue;
        }
        let request = link_down_request(link.index(), sequence);
        sendto(
            std::os::fd::AsRawFd::as_raw_fd(&route),
            &request,
            &kernel_address,
            MsgFlags::empty(),
        )
        .map_err(kernel)?;
        let mut reply = [0u8; 256];
        let length = recv(
            std::os::fd::AsRawFd::as_raw_fd(&route),
            &mut reply,
            MsgFlags::empty(),
        )
        .map_err(kernel)?;
        match ack_errno(reply.get(..length).unwrap_or_default()) {
            Ok(0) => cut.push(name),
            Ok(errno) => {
                return Err(LinkCutError::Kernel(format!(
                    "{name}: {}",
                    nix::Error::from_raw(errno)
                )));
            }
            Err(reason) => return Err(LinkCutError::Kernel(format!("{name}: {reason}"))),
        }
    }
    Ok(cut)
}

/// Sets every link but loopback down in the network namespace of `pid`, a
/// process of container `container_id`; returns the links cut.
pub async fn cut_links(pid: i32, container_id: &str) -> Result<Vec<String>, LinkCutError> {
    let namespace = container_namespace(pid, container_id)?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    // A thread of its own: the namespace switch dies with it.
    let started = std::thread::Builder::new()
        .name("occcd-link-cut".to_owned())
        .spawn(move || {
            let result = setns(namespace.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|err| LinkCutError::Kernel(format!("enter namespace: {err}")))
                .and_then(|()| cut_here());
            let _ = reply.send(result);
        });
    if let Err(err) = started {
        return Err(LinkCutError::Kernel(format!("no thread: {err}")));
    }
    answer
        .await
        .unwrap_or_else(|_| Err(LinkCutError::Kernel("the thread ended early".to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_a_well_formed_link_change() {
        let request = link_down_request(7, 3);
        assert_eq!(request.len(), 32);
        assert_eq!(u32::from_ne_bytes(request[0..4].try_into().unwrap()), 32);
        assert_eq!(
            u16::from_ne_bytes(request[4..6].try_into().unwrap()),
            libc::RTM_NEWLINK
        );
        assert_eq!(u32::from_ne_bytes(request[8..12].try_into().unwrap()), 3);
        assert_eq!(i32::from_ne_bytes(request[20..24].try_into().unwrap()), 7);
        // flags 0 with change IFF_UP: down.
        assert_eq!(u32::from_ne_bytes(request[24..28].try_into().unwrap()), 0);
        assert_eq!(
            u32::from_ne_bytes(request[28..32].try_into().unwrap()),
            libc::IFF_UP as u32
        );
    }

    #[test]
    fn acknowledgements_are_read_and_garbage_refused() {
        let mut ack = vec![0u8; 36];
        ack[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        assert_eq!(ack_errno(&ack), Ok(0));
        ack[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(ack_errno(&ack), Ok(libc::EPERM));
        assert!(ack_errno(&[1, 2, 3]).is_err());
    }

    /// A name from this process's own cgroups at least as long as a
    /// container id's shortest form, for a pid that passes the cgroup check.
    fn own_cgroup_name() -> String {
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        cgroups
            .lines()
            .flat_map(|line| line.rsplit('/').next())
            .filter(|name| name.len() >= 12)
            .max_by_key(|name| name.len())
            .unwrap_or_else(|| panic!("no cgroup name of 12 characters or more in {cgroups:?}"))
            .to_owned()
    }

    #[test]
    fn the_daemons_own_namespace_is_never_cut() {
        let me = i32::try_from(std::process::id()).unwrap();
        let refused = container_namespace(me, &own_cgroup_name());
        assert_eq!(refused.unwrap_err(), LinkCutError::HostNetwork);
    }

    #[test]
    fn no_pid_or_no_container_id_is_refused() {
        assert!(matches!(
            container_namespace(0, &"a".repeat(64)),
            Err(LinkCutError::Process { .. })
        ));
        assert!(matches!(
            container_namespace(1, "short"),
            Err(LinkCutError::Process { .. })
        ));
    }

    /// A process in a network namespace of its own (neither the daemon's
    /// nor the host's) whose cgroups do not name the container: its
    /// namespace is never the one cut.
    #[test]
    fn a_pid_outside_the_container_is_refused() {
        // A user namespace too, so this runs without root; `ready` is
        // printed from inside the new namespace, by the pid that stays.
        let mut outsider = std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--net", "sh", "-c"])
            .arg("echo ready; exec sleep 30")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("unshare runs");
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(outsider.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready.trim(), "ready");
        let pid = i32::try_from(outsider.id()).unwrap();
        let refused = container_namespace(pid, &"a".repeat(64));
        let _ = outsider.kill();
        let _ = outsider.wait();
        assert_eq!(refused.unwrap_err(), LinkCutError::NotTheContainer(pid));
    }
}
