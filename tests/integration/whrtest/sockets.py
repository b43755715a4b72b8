"""Sockets as the kernel sees them: free ports, unread bytes, IPv6."""

import binascii
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
