"""Load with crashes: senders that insist as the real sender does, and a
server killed with SIGKILL at random points under them
(test_durability, test_enrollments)."""

import random
import threading
import time

from .bodies import V1_SECRET, delivery
from .environment import slow
from .http import Closed, post


def in_threads(target, arg_lists, daemon=False):
    """Call @target with each of @arg_lists (tuples), each call in a
    thread of its own, all at once; return when every one has ended."""
    threads = [threading.Thread(target=target, args=args, daemon=daemon)
               for args in arg_lists]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Sender(threading.Thread):
    """Sends its deliveries until each got a 200, as the real sender
    would retry them (same Id, Attempt + 1), and now and then resends
    one already acknowledged. Once all are acknowledged it goes on
    resending acknowledged ones (duplicates), so that the server stays
    under load until it is told to stop."""

    def __init__(self, port, ids, acked, lock, stop, notifications=None):
        super().__init__(daemon=True)
        # The notifications of delivery Id did: one a1 by default.
        self.notifications = notifications or (
            lambda did: [{'Action': 'a1', 'Id': did}])
        self.port, self.ids, self.acked = port, ids, acked
        self.lock, self.stop_flag = lock, stop
        self.rng = random.Random(ids[0])
        self.attempts = {}
        self.error = None
        self.all_acked = threading.Event()

    def post(self, did):
        attempt = self.attempts.get(did, 0) + 1
        self.attempts[did] = attempt
        body = delivery(id=did, attempt=attempt,
                        notifications=self.notifications(did))
        try:
            return post(self.port, body, V1_SECRET).status
        except (OSError, Closed):
            return None     # the server was killed: send it again

    def resend_one(self):
        """A resend of something acknowledged: a duplicate."""
        with self.lock:
            old = self.rng.choice(sorted(self.acked))
        self.assertion(self.post(old) in (200, None, 503), old)

    def run(self):
        try:
            pending = list(self.ids)
            while pending and not self.stop_flag.is_set():
                did = pending.pop(0)
                status = self.post(did)
                if status == 200:
                    with self.lock:
                        self.acked.add(did)
                    if self.rng.random() < 0.2:
                        self.resend_one()
                else:
                    self.assertion(status in (None, 503), status)
                    pending.append(did)
                    time.sleep(0.01)
            self.all_acked.set()
            while not self.stop_flag.is_set():
                self.resend_one()
        except Exception as e:      # reported by the test
            self.error = e
            self.all_acked.set()

    @staticmethod
    def assertion(ok, status):
        if not ok:
            raise AssertionError('unexpected status %r' % status)


def kill_under_load(test, start, senders, stop, min_kills, seed, deadline):
    """Start a server with start(), then the senders; SIGKILL the server
    at random points and start it again, at least @min_kills times and
    until every sender has had all its deliveries acknowledged (a slow
    server, under valgrind, may take them all between two kills). Then
    stop the senders (raising what went wrong in one) and return the
    server that runs, for a `with` block that stops it; on failure it is
    killed."""
    srv = start()
    kills = 0
    rng = random.Random(seed)
    try:
        for s in senders:
            s.start()
        while (kills < min_kills or
               not all(s.all_acked.is_set() for s in senders)):
            test.assertLess(time.monotonic(), deadline, 'too slow')
            time.sleep(rng.uniform(0.05, 0.3) * slow(1) ** 0.5)
            srv.kill()          # SIGKILL, at whatever point
            srv.cleanup()
            kills += 1
            srv = start()
        stop.set()
        for s in senders:
            s.join()
            if s.error is not None:
                raise s.error
        return srv
    except BaseException:
        stop.set()
        if srv.running():
            srv.kill()
        srv.cleanup()
        raise
