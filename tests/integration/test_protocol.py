"""The wire contract of a delivery POST (PROTOCOL.md §1, §3, §4 and
vectors/README.md): signatures, media types, the order of the checks,
body rules, answers, the request log, Expect: 100-continue and chunked
bodies."""

import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK, V0_SECRET, V1_SECRET  # noqa: E402

SECRETS_ENV = {'MS_WebHookReceiverSecret_Custom':
               '%s, vzero=%s' % (V1_SECRET, V0_SECRET)}


def v1_hex():
    return w.V1_SIGNATURE[len('sha256='):]


class Vectors(w.ServerTestCase):
    """The three vectors and every negative case of vectors/README.md."""

    server_env = SECRETS_ENV

    def assert_accepted(self, r):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b'', r)
        self.assertEqual(r.header('Content-Length'), '0', r)

    def test_harness_signs_like_the_vectors(self):
        # The vectors were computed independently; sign() must agree, or
        # every other test here proves nothing.
        self.assertEqual(w.sign(V0_SECRET, w.vector('v0')), w.V0_SIGNATURE)
        self.assertEqual(w.sign(V1_SECRET, w.vector('v1')), w.V1_SIGNATURE)
        self.assertEqual(w.sign(V1_SECRET, w.vector('v2')), w.V2_SIGNATURE)
        self.assertEqual(len(w.vector('v0')), 239)
        self.assertEqual(len(w.vector('v1')), 1078)

    def test_v0_with_its_48_character_secret(self):
        r = w.post(self.srv.port, w.vector('v0'), signature=w.V0_SIGNATURE,
                   path=WEBHOOK + '/vzero')
        self.assert_accepted(r)

    def test_v1(self):
        r = w.post(self.srv.port, w.vector('v1'), signature=w.V1_SIGNATURE)
        self.assert_accepted(r)

    def test_v2_retry_of_v1(self):
        self.assert_accepted(w.post(self.srv.port, w.vector('v1'),
                                    signature=w.V1_SIGNATURE))
        self.assert_accepted(w.post(self.srv.port, w.vector('v2'),
                                    signature=w.V2_SIGNATURE))

    def test_v0_signature_does_not_verify_on_the_default_id(self):
        r = w.post(self.srv.port, w.vector('v0'), signature=w.V0_SIGNATURE)
        self.assertEqual(r.status, 400, r)

    def test_negative_cases_of_the_vectors_readme(self):
        v1 = w.vector('v1')
        lf = v1.replace(b'\r\n', b'\n')
        self.assertEqual(len(lf), 1046)
        self.assertTrue(w.mac_hex(V1_SECRET, lf).startswith('7887781E'))
        self.assertTrue(w.mac_hex(V1_SECRET, lf).endswith('D24C'))
        sig = w.V1_SIGNATURE
        json_type = [('Content-Type', w.JSON_TYPE)]
        cases = [
            ('lowercase header', v1, [('ms-signature', sig.lower())], 200),
            ('spaces around, any case', v1,
             [('ms-signature', ' SHA256 = %s ' % v1_hex())], 200),
            ('empty part dropped', v1,
             [('ms-signature', 'sha256==' + v1_hex())], 200),
            ('62 hex chars', v1, [('ms-signature', sig[:-2])], 400),
            ('65 hex chars', v1, [('ms-signature', sig + 'A')], 400),
            ('sha1', v1, [('ms-signature', 'sha1=' + v1_hex())], 400),
            ('no header', v1, [], 400),
            ('header twice', v1,
             [('ms-signature', sig), ('ms-signature', sig)], 400),
            ('header twice, names in two cases', v1,
             [('ms-signature', sig), ('MS-Signature', sig)], 400),
            ('CRLF turned into LF', lf, [('ms-signature', sig)], 400),
            ('secret with one extra character', v1,
             [('ms-signature', w.sign(V1_SECRET + 'x', v1))], 400),
        ]
        for name, body, headers, expected in cases:
            with self.subTest(name):
                r = w.request('POST', WEBHOOK, body, json_type + headers,
                              port=self.srv.port)
                self.assertEqual(r.status, expected, r)
                if expected == 200:
                    self.assertEqual(r.body, b'')
                else:
                    w.assert_error_body(self, r, [V1_SECRET], body)
        with self.subTest('text/plain'):
            r = w.post(self.srv.port, v1, signature=sig,
                       content_type='text/plain')
            self.assertEqual(r.status, 415, r)
            w.assert_error_body(self, r, [V1_SECRET], v1)

    def test_other_header_forms_are_refused(self):
        v1 = w.vector('v1')
        hx = v1_hex()
        forms = [
            'sha256',
            'sha256=',
            '=',
            '==',
            '',
            'k1=v1;k2=v2',
            'sha256=' + 'G' * 64,
            'sha256=' + hx[:-1] + 'g',
            'sha256=' + hx[:-1],                    # odd length
            'sha256=' + hx[:32] + ' ' + hx[32:],    # space inside
            'sha256=' + hx + '=' + hx,              # three parts
            hx,                                     # no algorithm
            'sha512=' + hx,
            'sha256 ' + hx,
        ]
        for form in forms:
            with self.subTest(form=form):
                r = w.post(self.srv.port, v1, signature=form)
                self.assertEqual(r.status, 400, r)
                w.assert_error_body(self, r, [V1_SECRET], v1)


class MediaTypes(w.ServerTestCase):
    server_env = SECRETS_ENV

    def test_json_media_types_are_accepted(self):
        body = w.vector('v1')
        for ct in ['application/json', 'text/json',
                   'application/vnd.x+json', 'text/x+json',
                   'application/json; charset=utf-8',
                   'application/json;charset=UTF-8',
                   'APPLICATION/JSON', 'Text/JSON',
                   'application/VND.Contoso.Event+JSON; charset=utf-8',
                   'application/json ; charset="utf-8"']:
            with self.subTest(content_type=ct):
                r = w.post(self.srv.port, body, V1_SECRET, content_type=ct)
                self.assertEqual(r.status, 200, r)

    def test_other_media_types_are_refused_with_415(self):
        body = w.vector('v1')
        for ct in ['text/plain', None, 'application/xml',
                   'application/jsonx', 'application/x-www-form-urlencoded',
                   'json', 'application/', 'image/json', 'application/json+',
                   '']:
            with self.subTest(content_type=ct):
                r = w.post(self.srv.port, body, V1_SECRET, content_type=ct)
                self.assertEqual(r.status, 415, r)
                w.assert_error_body(self, r, [V1_SECRET], body)

    def test_signature_is_checked_before_the_media_type(self):
        body = w.vector('v1')
        r = w.post(self.srv.port, body, V1_SECRET + 'x',
                   content_type='text/plain')
        self.assertEqual(r.status, 400, r)
        r = w.post(self.srv.port, body, None, content_type=None)
        self.assertEqual(r.status, 400, r)

    def test_the_secret_is_looked_up_first(self):
        r = w.post(self.srv.port, w.vector('v1'), None, content_type=None,
                   path=WEBHOOK + '/nosuch')
        self.assertEqual(r.status, 404, r)


def nested(depth):
    """A JSON object whose containers nest @depth deep, the top object
    included."""
    return b'{"Deep": ' + b'[' * (depth - 1) + b']' * (depth - 1) + b'}'


class BodyRules(w.ServerTestCase):
    """Checks 7 and 8 of PROTOCOL.md §3, with a valid signature."""

    server_env = SECRETS_ENV

    def status_of(self, body):
        if isinstance(body, str):
            body = body.encode('utf-8')
        r = w.post(self.srv.port, body, V1_SECRET)
        if r.status != 200:
            w.assert_error_body(self, r, [V1_SECRET], body)
        else:
            self.assertEqual(r.body, b'')
        return r.status

    def test_refused_bodies(self):
        cases = {
            'empty body': b'',
            'whitespace only': b' \r\n',
            'an array': b'[]',
            'a string': b'"x"',
            'a number': b'1',
            'null': b'null',
            'invalid JSON': b'{"Id": ',
            'not JSON': b'Id=1&Attempt=1',
            'trailing garbage': b'{} x',
            'two objects': b'{}{}',
            'Notifications an object': b'{"Notifications": {}}',
            'Notifications a number': b'{"Notifications": 5}',
            'Notifications a string': b'{"Notifications": "a1"}',
            'Notifications true': b'{"Notifications": true}',
            'element a number': b'{"Notifications": [1]}',
            'element a string': b'{"Notifications": ["a1"]}',
            'element an array': b'{"Notifications": [[]]}',
            'element null': b'{"Notifications": [null]}',
            'second element not an object':
                b'{"Notifications": [{"Action": "a1"}, 2]}',
            'Action an object': b'{"Notifications": [{"Action": {}}]}',
            'Action an array': b'{"Notifications": [{"Action": ["a1"]}]}',
            'second Action an array':
                b'{"Notifications": [{"Action": "a1"}, {"Action": []}]}',
        }
        for name, body in cases.items():
            with self.subTest(name):
                self.assertEqual(self.status_of(body), 400)

    def test_accepted_bodies(self):
        cases = {
            'Action a number': b'{"Notifications": [{"Action": 1}]}',
            'Action a decimal': b'{"Notifications": [{"Action": 1.5}]}',
            'Action true': b'{"Notifications": [{"Action": true}]}',
            'Action false': b'{"Notifications": [{"Action": false}]}',
            'Action null': b'{"Notifications": [{"Action": null}]}',
            'no Action': b'{"Notifications": [{"Other": {"Action": []}}]}',
            'no Notifications': b'{"Id": "x", "Attempt": 1}',
            'Notifications null': b'{"Notifications": null}',
            'Notifications empty': b'{"Notifications": []}',
            'empty object': b'{}',
            'whitespace around': b' \r\n\t{}\r\n ',
            'Action-like keys elsewhere': (
                b'{"Action": [], "Properties": {"Action": {}}, '
                b'"Notifications": [{"Action": "a1", '
                b'"Sub": {"Action": []}}]}'),
            'unknown members': (
                b'{"Id": {"x": 1}, "Attempt": "one", "Extra": [1, {}], '
                b'"Notifications": [{"Action": "a1"}]}'),
            'LF line ends': w.delivery(crlf=False),
            'non-ASCII text': w.delivery(notifications=[
                {'Action': 'CourseCompleted', 'Title': 'S\u00e9curit\u00e9 '
                 '\u2013 \u65e5\u672c \U0001F600'}]),
        }
        for name, body in cases.items():
            with self.subTest(name):
                self.assertEqual(self.status_of(body), 200)

    def test_no_id_is_accepted_and_the_log_warns(self):
        mark = self.srv.mark()
        self.assertEqual(self.status_of(w.delivery(id=None)), 200)
        self.srv.wait_log(r'(?m)^\S+ warn .*without an Id', since=mark)

    def test_byte_order_mark_before_the_json(self):
        body = b'\xef\xbb\xbf' + w.vector('v1')
        self.assertEqual(self.status_of(body), 200)
        self.assertEqual(self.status_of(b'\xef\xbb\xbf{}'), 200)
        # A mark and nothing else is an empty body.
        self.assertEqual(self.status_of(b'\xef\xbb\xbf'), 400)

    def test_nesting_deeper_than_64_is_refused(self):
        self.assertEqual(self.status_of(nested(64)), 200)
        self.assertEqual(self.status_of(nested(65)), 400)
        self.assertEqual(self.status_of(
            b'{"a":' * 64 + b'1' + b'}' * 64), 200)
        self.assertEqual(self.status_of(
            b'{"a":' * 65 + b'1' + b'}' * 65), 400)
        inside = (b'{"Notifications": [{"Action": "a1", "Deep": ' +
                  b'[' * 62 + b']' * 62 + b'}]}')
        self.assertEqual(self.status_of(inside), 400)
        # Far deeper than any stack would take: refused, not a crash.
        self.assertEqual(self.status_of(nested(100000)), 400)
        self.assertEqual(self.status_of(b'[' * 100000), 400)

    def test_answers_are_terse(self):
        r = w.post(self.srv.port, w.vector('v1'), V1_SECRET)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'')
        self.assertEqual(r.header('Content-Length'), '0')
        self.assertIsNone(r.header('Location'))
        r = w.post(self.srv.port, w.vector('v1'), V1_SECRET + 'y')
        self.assertEqual(r.status, 400)
        w.assert_error_body(self, r, [V1_SECRET], w.vector('v1'))
        self.assertGreater(len(r.body), 0, 'say why, briefly')


class RequestLog(unittest.TestCase):
    def test_text_request_line(self):
        with w.Server(env=SECRETS_ENV) as srv:
            mark = srv.mark()
            self.assertEqual(w.post(srv.port, w.vector('v1'),
                                    V1_SECRET).status, 200)
            line = srv.request_line(mark)
            f = w.log_fields(line)
            self.assertEqual(f['method'], 'POST', line)
            self.assertEqual(f['path'], WEBHOOK, line)
            self.assertEqual(f['status'], '200', line)
            self.assertRegex(f['duration_ms'], r'^\d+\.\d{3}$', line)
            self.assertLess(float(f['duration_ms']), w.timing_bound(5000))
            self.assertEqual(f['delivery'],
                             '5f0c2a9e8b7d4c3e9a1b2c3d4e5f6071', line)
            self.assertEqual(f['attempt'], '1', line)

            mark = srv.mark()
            body = w.vector('v2')
            self.assertEqual(w.post(srv.port, body, V1_SECRET,
                                    path=WEBHOOK + '/VZERO/').status, 400)
            line = srv.request_line(mark)
            f = w.log_fields(line)
            self.assertEqual(f['status'], '400', line)
            self.assertEqual(f['path'], WEBHOOK + '/VZERO/', line)
            self.assertIn('error', f, line)
            self.assertNotIn(w.mac_hex(V1_SECRET, body), line.upper())
            self.assertNotIn(w.mac_hex(V0_SECRET, body), line.upper())

    def test_json_log_lines(self):
        with w.Server(['--log-format', 'json'], env=SECRETS_ENV) as srv:
            self.assertEqual(w.post(srv.port, w.vector('v1'),
                                    V1_SECRET).status, 200)
            self.assertEqual(w.post(srv.port, w.vector('v1'),
                                    V0_SECRET).status, 400)
            self.assertEqual(w.get(srv.port, WEBHOOK + '?echo=x').status,
                             200)
            self.assertEqual(w.get(srv.port, '/a"b\\c\x01').status, 404)
            self.assertEqual(w.post(srv.port, w.delivery(id=None),
                                    V1_SECRET).status, 200)
            srv.wait_log(r'"msg":"request"', count=5)
            text = srv.stop()
        lines = w.program_lines(text)
        self.assertGreaterEqual(len(lines), 8)
        requests = []
        for line in lines:
            obj = json.loads(line)
            self.assertIsInstance(obj, dict, line)
            for key in ('time', 'level', 'msg'):
                self.assertIn(key, obj, line)
            if obj['msg'] == 'request':
                requests.append(obj)
        self.assertEqual(len(requests), 5, lines)
        first = requests[0]
        self.assertEqual(first['method'], 'POST')
        self.assertEqual(first['path'], WEBHOOK)
        self.assertEqual(first['status'], 200)
        self.assertIsInstance(first['duration_ms'], (int, float))
        self.assertEqual(first['delivery'], '5f0c2a9e8b7d4c3e9a1b2c3d4e5f6071')
        self.assertEqual(first['attempt'], 1)
        self.assertEqual(requests[1]['status'], 400)
        self.assertEqual(requests[3]['path'], '/a"b\\c\x01')
        self.assertTrue(any(o for o in map(json.loads, lines)
                            if o['level'] == 'warn' and
                            'without an Id' in o['msg']))

    def test_json_log_is_utf8_whatever_the_request(self):
        # A JSON text is UTF-8 (RFC 8259 §8.1); a strict log collector
        # drops a line that is not. Paths and ids come from the network,
        # so any byte can arrive, raw or percent-encoded.
        with w.Server(['--log-format', 'json'], env=SECRETS_ENV) as srv:
            self.assertEqual(w.get(srv.port, WEBHOOK + '/%ff?echo=1').status,
                             404)
            self.assertEqual(w.get(srv.port, b'/caf\xe9').status, 404)
            # Valid UTF-8 (an id of 'x' and 200 'é'), longer than a log
            # value may be: cutting it must not split a character.
            self.assertEqual(w.get(srv.port, WEBHOOK + '/x' + '%C3%A9' * 200 +
                                   '?echo=1').status, 404)
            srv.wait_log(r'"msg":"request"', count=3)
            raw = srv.stop()
            data = srv.log_bytes()
        for line in data.split(b'\n'):
            if line and not (w.WRAPPER and re.match(rb'^(==|--)\d+', line)):
                with self.subTest(line=line):
                    json.loads(line)   # bytes: decoded as strict UTF-8
        self.assertTrue(raw)


class ExpectContinue(w.ServerTestCase):
    server_env = SECRETS_ENV

    def head_then_continue(self, c, signature, body):
        """Send a POST's head alone, with Expect: 100-continue; whr must
        answer 100 before the body comes."""
        c.send(w.build_request('POST', WEBHOOK, b'', [
            ('Content-Type', w.JSON_TYPE),
            ('ms-signature', signature),
            ('Expect', '100-continue'),
            ('Content-Length', str(len(body)))]))
        r = c.read_response('POST', skip_continue=False)
        self.assertEqual(r.status, 100, r)
        return r

    def test_100_continue_before_the_body(self):
        body = w.vector('v1')
        with w.Connection(self.srv.port) as c:
            r = self.head_then_continue(c, w.V1_SIGNATURE, body)
            self.assertEqual(r.version, 'HTTP/1.1')
            c.send(body)
            r = c.read_response('POST')
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b'')
            # The connection stays usable.
            r = c.request('GET', WEBHOOK + '?echo=again')
            self.assertEqual((r.status, r.body), (200, b'again'))

    def test_100_continue_then_a_bad_signature(self):
        body = w.vector('v1')
        with w.Connection(self.srv.port) as c:
            self.head_then_continue(c, w.V2_SIGNATURE, body)
            c.send(body)
            self.assertEqual(c.read_response('POST').status, 400)


class Chunked(w.ServerTestCase):
    server_env = SECRETS_ENV

    def send_chunked(self, body, signature, sizes):
        chunks = b''
        i = 0
        for n in sizes:
            piece = body[i:i + n]
            i += n
            if piece:
                chunks += b'%x\r\n%s\r\n' % (len(piece), piece)
        if i < len(body):
            chunks += b'%x\r\n%s\r\n' % (len(body) - i, body[i:])
        chunks += b'0\r\n\r\n'
        with w.Connection(self.srv.port) as c:
            c.send(w.build_request('POST', WEBHOOK, b'', [
                ('Content-Type', w.JSON_TYPE),
                ('ms-signature', signature),
                ('Transfer-Encoding', 'chunked')]))
            c.send(chunks)
            return c.read_response('POST')

    def test_chunked_body_is_verified_after_dechunking(self):
        body = w.vector('v1')
        r = self.send_chunked(body, w.V1_SIGNATURE, [100, 1, 400])
        self.assertEqual(r.status, 200, r)
        r = self.send_chunked(body, w.V1_SIGNATURE, [len(body)])
        self.assertEqual(r.status, 200, r)

    def test_chunked_body_with_a_signature_of_other_bytes(self):
        body = w.vector('v1')
        # The MAC of the first chunk alone, or of the chunked encoding.
        r = self.send_chunked(body, w.sign(V1_SECRET, body[:100]), [100])
        self.assertEqual(r.status, 400, r)
        encoded = b'64\r\n' + body[:100] + b'\r\n'
        r = self.send_chunked(body, w.sign(V1_SECRET, encoded), [100])
        self.assertEqual(r.status, 400, r)


if __name__ == '__main__':
    w.main()
