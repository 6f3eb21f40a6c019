"""What the healthcheck_* scripts read of /proc: the processes of this
container with a given name, and the sockets they hold.

Python standard library only (no ss/lsof/pgrep in the images).
"""

import os
from typing import Iterator, List, Optional, Set, Tuple


def mount_namespace(pid: str) -> Optional[str]:
    try:
        return os.readlink(f'/proc/{pid}/ns/mnt')
    except OSError:  # gone, or not ours to read
        return None


def in_this_container(pid: str, own_namespace: Optional[str]) -> bool:
    """A container that shares the host's pid namespace (libvirt's) sees every
    process of the host, among them a libvirtd that outlived the previous
    container and still holds the socket until the new one's start stops it.
    Only this container's processes count: those in its mount namespace. A
    namespace that cannot be read is another user's process in a container of
    its own pid namespace, where every process is the container's."""
    theirs = mount_namespace(pid)
    return theirs is None or own_namespace is None or theirs == own_namespace


def matches(pid: str, name: str) -> bool:
    """comm is the kernel's (15-char) name; argv also catches interpreters:
    a Python service runs as python3 with its script name among the args."""
    try:
        with open(f'/proc/{pid}/comm') as handle:
            comm = handle.read().rstrip('\n')
        with open(f'/proc/{pid}/cmdline', 'rb') as handle:
            argv = handle.read().decode(errors='replace').split('\0')
    except OSError:  # gone, or not ours to read
        return False
    return comm == name or any(name in arg for arg in argv if arg)


def matching_pids(name: str) -> List[str]:
    me = str(os.getpid())  # our own argv holds the name too
    own_namespace = mount_namespace(me)
    return [pid for pid in os.listdir('/proc')
            if pid.isdigit() and pid != me and matches(pid, name)
            and in_this_container(pid, own_namespace)]


def socket_inodes(pid: str) -> Set[str]:
    """Inodes of the sockets the process has open (fd links read socket:[N])."""
    inodes = set()
    try:
        fds = os.listdir(f'/proc/{pid}/fd')
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[len('socket:['):-1])
    return inodes


def tcp_sockets(pid: str) -> Iterator[Tuple[str, int, int, str]]:
    """(state, local port, remote port, inode) of every TCP socket in the
    process's network namespace (/proc/PID/net, as the process sees it)."""
    for table in ('tcp', 'tcp6'):
        try:
            with open(f'/proc/{pid}/net/{table}') as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # fields: sl local_address rem_address st ... inode (10th)
            local_port = int(fields[1].rsplit(':', 1)[1], 16)
            remote_port = int(fields[2].rsplit(':', 1)[1], 16)
            yield fields[3], local_port, remote_port, fields[9]


def unix_sockets(pid: str) -> Iterator[Tuple[str, str]]:
    """(path, inode) of every bound unix socket in the process's namespace."""
    try:
        with open(f'/proc/{pid}/net/unix') as handle:
            rows = handle.read().splitlines()[1:]
    except OSError:
        return
    for row in rows:
        # fields: Num RefCount Protocol Flags Type St Inode [Path]; the path
        # may contain spaces, so split no further than it.
        fields = row.split(None, 7)
        if len(fields) == 8:
            yield fields[7], fields[6]
