"""The example program of docs/inbox.md, built from the page itself, run
for real: a transactional handler that counts completions per course
counts each notification exactly once, across resends and restarts, and
its rejection leaves the notification dead with its reason."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import V1_SECRET  # noqa: E402
from test_inbox import DataDirTestCase  # noqa: E402

ENV = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}


def completed(course=None):
    n = {'Action': 'CourseCompleted', 'Users': [{'Id': 'u1'}]}
    if course is not None:
        n['Course'] = {'Id': course}
    return n


class InboxExample(DataDirTestCase):
    def counts(self):
        return dict(self.data.query('SELECT course, n FROM completions'))

    def post(self, srv, body):
        r = w.post(srv.port, body, V1_SECRET)
        self.assertEqual(r.status, 200, r)

    def test_counts_each_completion_once(self):
        d1 = w.delivery(id='d1' * 16, notifications=[completed('c1')])
        d2 = w.delivery(id='d2' * 16, notifications=[
            completed('c1'), completed('c2'),
            {'Action': 'CourseStarted', 'Course': {'Id': 'c1'}}])
        d3 = w.delivery(id='d3' * 16, notifications=[completed()])
        resend = w.delivery(id='d1' * 16, attempt=2,
                            notifications=[completed('c1')])
        with w.Server(self.data.args(), env=ENV, program='doc-inbox') as srv:
            for body in (d1, d2, resend, d3):
                self.post(srv, body)
            # CourseStarted has no handler: done at once.
            self.data.wait_states(done=4, dead=1)
        self.assertEqual(self.counts(), {'c1': 2, 'c2': 1})
        (error,), = self.data.query(
            "SELECT error FROM notifications WHERE state = 'dead'")
        self.assertEqual(error, 'completions: no Course.Id')

        # A restart runs nothing again (its setup finds the table), and
        # a later resend is still a duplicate.
        with w.Server(self.data.args(), env=ENV, program='doc-inbox') as srv:
            self.post(srv, resend)
            self.post(srv, w.delivery(notifications=[completed('c2')]))
            self.data.wait_states(done=5, dead=1)
        self.assertEqual(self.counts(), {'c1': 2, 'c2': 2})


if __name__ == '__main__':
    unittest.main(verbosity=2)
