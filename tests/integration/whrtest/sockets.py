"""Sockets as the kernel sees them: free ports, unread bytes, IPv6."""

import binascii
import random
import socket
import time

from .environment import slow


def _proc_addr(addr):
    """(host, port) of a /proc/net/tcp{,6} address field."""
    host_hex, port_hex = addr.split(':')
    raw = binascii.unhexlify(host_hex)
    if len(raw) == 4:
        host = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:
        words = b''.join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        host = socket.inet_ntop(socket.AF_INET6, words)
    return host, int(port_hex, 16)


def server_unread_bytes(conn):
    """How many bytes the server has not read yet from client @conn's
    connection (its socket's receive queue), or None if not found."""
    local = conn.sock.getsockname()[:2]
    peer = conn.sock.getpeername()[:2]
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if (_proc_addr(cols[1]) == peer and
                    _proc_addr(cols[2]) == local):
                return int(cols[4].split(':')[1], 16)
    return None


def wait_server_read(conn, timeout=5):
    """Bounded polling until the server has read every byte sent on
    @conn (so a test knows its partial request is in the server's hands
    before it acts, e.g. sends a signal)."""
    deadline = time.monotonic() + slow(timeout)
    while True:
        n = server_unread_bytes(conn)
        if n == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError('the server did not read the sent bytes '
                                 'within %.1f s (%r unread)'
                                 % (slow(timeout), n))
        time.sleep(0.005)


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(('::1', 0))
        return True
    except OSError:
        return False


def free_port():
    """A port that was free a moment ago (for tests that need a fixed
    port number)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def ephemeral_range():
    """The kernel's range of ephemeral ports (low, high), inclusive: the
    source ports it picks for connections that did not bind one."""
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999     # Linux's default


def restart_port():
    """A port that was free a moment ago and lies outside the kernel's
    ephemeral range, for a server restarted on the same port (after a
    kill -9, say). A port from free_port() is in that range: between the
    kill and the restart any connection on the machine may get it as its
    source port, and the restart then fails with "Address already in
    use". The kernel never picks a port outside the range by itself."""
    low, high = ephemeral_range()
    candidates = [(1025, low - 1), (high + 1, 65535)]
    candidates = [(a, b) for a, b in candidates if a <= b]
    if not candidates:
        raise RuntimeError('no port outside the ephemeral range %d-%d'
                           % (low, high))
    rng = random.Random()
    for _ in range(200):
        a, b = rng.choice(candidates)
        port = rng.randint(a, b)
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                continue
        return port
    raise RuntimeError('no free port outside the ephemeral range %d-%d'
                       % (low, high))
