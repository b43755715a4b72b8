"""The registration echo (PROTOCOL.md §1 "Verification", §3 "GET")."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK  # noqa: E402

S_DEFAULT = w.secret('echo-default')
S_TENANT = w.secret('echo-tenant2')


class Echo(w.ServerTestCase):
    server_env = {'MS_WebHookReceiverSecret_Custom':
                  '%s,tenant2=%s' % (S_DEFAULT, S_TENANT)}

    def echo(self, query, path=WEBHOOK):
        return w.get(self.srv.port, path + query)

    def assert_echo(self, r, value):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header('Content-Type'),
                         'text/plain; charset=utf-8', r)
        self.assertEqual(r.body, value.encode('utf-8'), r)
        self.assertEqual(r.header('Content-Length'),
                         str(len(value.encode('utf-8'))), r)

    def test_echo_value_exactly(self):
        # What the sender sends: 32 lowercase hex characters.
        value = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'
        self.assert_echo(self.echo('?echo=' + value), value)
        self.assert_echo(self.echo('?echo=x'), 'x')

    def test_url_decoding(self):
        self.assert_echo(self.echo('?echo=a%20b'), 'a b')
        self.assert_echo(self.echo('?echo=a+b'), 'a b')
        self.assert_echo(self.echo('?echo=%41%42c'), 'ABc')
        self.assert_echo(self.echo('?echo=%2b%26%3d'), '+&=')
        self.assert_echo(self.echo('?echo=caf%C3%A9'), 'caf\u00e9')

    def test_parameter_name_in_any_case(self):
        self.assert_echo(self.echo('?ECHO=upper'), 'upper')
        self.assert_echo(self.echo('?Echo=mixed'), 'mixed')
        self.assert_echo(self.echo('?e%63ho=encoded'), 'encoded')

    def test_echo_among_other_parameters(self):
        self.assert_echo(self.echo('?a=1&echo=v&b=2'), 'v')
        self.assert_echo(self.echo('?noecho&echo=v'), 'v')

    def test_two_echo_parameters_are_joined_with_a_comma(self):
        self.assert_echo(self.echo('?echo=a&echo=b'), 'a,b')
        self.assert_echo(self.echo('?echo=a&ECHO=b&x=y&echo=c'), 'a,b,c')

    def test_missing_or_empty_echo_is_400(self):
        for query in ['', '?', '?x=1', '?echo=', '?echo', '?echo&x=1',
                      '?echoo=1', '?echo%3D1']:
            with self.subTest(query=query):
                r = self.echo(query)
                self.assertEqual(r.status, 400, r)
                w.assert_error_body(self, r, [S_DEFAULT, S_TENANT])

    def test_with_an_id(self):
        self.assert_echo(self.echo('?echo=t2', WEBHOOK + '/tenant2'), 't2')
        self.assert_echo(self.echo('?echo=t2', WEBHOOK + '/TENANT2/'), 't2')
        r = self.echo('', WEBHOOK + '/tenant2')
        self.assertEqual(r.status, 400, r)

    def test_unknown_id_is_404(self):
        for path in [WEBHOOK + '/nosuch', WEBHOOK + '/tenant', WEBHOOK +
                     '/tenant22']:
            with self.subTest(path=path):
                r = self.echo('?echo=x', path)
                self.assertEqual(r.status, 404, r)
                self.assertNotEqual(r.body, b'x')
                w.assert_error_body(self, r, [S_DEFAULT, S_TENANT])

    def test_head_is_405_with_allow(self):
        r = w.request('HEAD', WEBHOOK + '?echo=x', port=self.srv.port)
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.header('Allow'), 'GET, POST', r)

    def test_echo_on_a_kept_alive_connection(self):
        with w.Connection(self.srv.port) as c:
            for value in ['one', 'two', 'three']:
                self.assert_echo(c.request('GET', WEBHOOK + '?echo=' + value),
                                 value)


if __name__ == '__main__':
    w.main()
