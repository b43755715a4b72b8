"""`whr verify` (issue 3 point 3): does an ms-signature verify, and if
not, why. Every broken input is built from the v1 vector and its secret.
No run may print the secret, the expected MAC, or the MAC of any body
variant it tries."""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402

SECRET = w.V1_SECRET
HEX = w.V1_SIGNATURE[len('sha256='):]
BOM = b'\xef\xbb\xbf'
_LONG_HEX = re.compile(r'[0-9A-Fa-f]{16,}')
_HEX_RUN = re.compile(r'[0-9a-f]{8,}')


def v1():
    return w.vector('v1')


def to_lf(body):
    return body.replace(b'\r\n', b'\n')


def to_crlf(body):
    return re.sub(rb'(?<!\r)\n', b'\r\n', body)


def compact(body):
    obj = json.loads(body.decode('utf-8-sig'))
    return json.dumps(obj, separators=(',', ':'),
                      ensure_ascii=False).encode('utf-8')


def indented(body, crlf):
    obj = json.loads(body.decode('utf-8-sig'))
    text = w.to_json_text(obj).encode('utf-8')
    return text.replace(b'\n', b'\r\n') if crlf else text


def variants(body):
    """Every body whr verify might try for @body (and more): their MACs
    must never be printed."""
    bases = {body, to_lf(body), to_crlf(body)}
    try:
        bases |= {compact(body), indented(body, True),
                  indented(body, False)}
    except ValueError:
        pass
    out = set()
    for b in bases:
        core = b[3:] if b.startswith(BOM) else b
        for with_bom in (core, BOM + core):
            out |= {with_bom, with_bom + b'\r\n', with_bom + b'\n',
                    with_bom.rstrip(b'\r\n')}
    return out


class VerifyTestCase(unittest.TestCase):

    def run_verify(self, args, stdin=b'', env=None, secrets=(SECRET,),
                   bodies=()):
        """Run `whr verify ARGS`; returns (status, stdout, stderr) and
        checks that nothing secret was printed."""
        with tempfile.TemporaryDirectory(prefix='whr-verify-') as tmp:
            p = subprocess.run([*w.WRAPPER, w.whr_bin(), 'verify', *args],
                               input=stdin, env=w.minimal_env(env), cwd=tmp,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=w.slow(30))
        out = p.stdout.decode('utf-8', 'replace')
        err = ''.join(l + '\n' for l in
                      w.program_lines(p.stderr.decode('utf-8', 'replace')))
        self.assert_nothing_secret(out + err, secrets,
                                   set(bodies) | {v1(), stdin or b''})
        return p.returncode, out, err

    def assert_nothing_secret(self, text, secrets, bodies):
        low = text.lower()
        keys = set()
        for s in secrets:
            keys |= {s, s.strip(), s.strip(' \t\r\n\u00a0\u200b\ufeff')}
        for s in keys:
            if len(s) >= 8:
                self.assertNotIn(s, text, 'the secret was printed')
        # No MAC, nor any 8 digits of one: the output quotes at most 4
        # digits of the given signature.
        grams = set()
        for b in bodies:
            for v in variants(b):
                for s in keys:
                    if s:
                        m = w.mac_hex(s, v).lower()
                        grams |= {m[i:i + 8] for i in range(57)}
        for run in _HEX_RUN.findall(low):
            for i in range(len(run) - 7):
                self.assertNotIn(run[i:i + 8], grams,
                                 'part of a MAC was printed:\n' + text)
        self.assertIsNone(_LONG_HEX.search(text),
                          'a long hex string was printed:\n' + text)

    def verify_file(self, body, signature, secret=SECRET, extra=()):
        with tempfile.NamedTemporaryFile(prefix='whr-body-') as f:
            f.write(body)
            f.flush()
            return self.run_verify(['--secret', secret, '--signature',
                                    signature, *extra, f.name],
                                   secrets=(secret, SECRET), bodies=(body,))

    def assert_fails(self, body, signature, *expected, secret=SECRET):
        rc, out, err = self.verify_file(body, signature, secret)
        self.assertEqual(rc, 1, out + err)
        self.assertTrue(out.startswith('does not verify'), out)
        flat = ' '.join(out.split())
        for e in expected:
            self.assertIn(e, flat)
        return flat


class Inputs(VerifyTestCase):
    """Where the body and the secret come from; exit statuses."""

    def test_file(self):
        rc, out, err = self.verify_file(v1(), w.V1_SIGNATURE)
        self.assertEqual(rc, 0, out + err)
        self.assertIn('verifies', out)
        self.assertEqual(err, '')

    def test_standard_input(self):
        for extra in ([], ['-']):
            with self.subTest(extra=extra):
                rc, out, err = self.run_verify(
                    ['--secret', SECRET, '--signature', w.V1_SIGNATURE,
                     *extra], stdin=v1())
                self.assertEqual(rc, 0, out + err)
                self.assertIn('1078 bytes', out)

    def test_options_with_equals(self):
        rc, out, err = self.run_verify(
            ['--secret=' + SECRET, '--signature=' + w.V1_SIGNATURE],
            stdin=v1())
        self.assertEqual(rc, 0, out + err)

    def test_secret_file(self):
        for content in (SECRET, SECRET + '\n', SECRET + '\r\n'):
            with self.subTest(content=content):
                with tempfile.NamedTemporaryFile('w', newline='') as f:
                    f.write(content)
                    f.flush()
                    rc, out, err = self.run_verify(
                        ['--secret-file', f.name, '--signature',
                         w.V1_SIGNATURE], stdin=v1())
                self.assertEqual(rc, 0, out + err)

    def test_whr_secret(self):
        rc, out, err = self.run_verify(['--signature', w.V1_SIGNATURE],
                                       stdin=v1(), env={'WHR_SECRET': SECRET})
        self.assertEqual(rc, 0, out + err)
        # an option wins over the variable
        rc, out, err = self.run_verify(
            ['--secret', SECRET, '--signature', w.V1_SIGNATURE], stdin=v1(),
            env={'WHR_SECRET': 'x' * 32})
        self.assertEqual(rc, 0, out + err)

    def test_retry_v2(self):
        rc, out, err = self.run_verify(
            ['--secret', SECRET, '--signature', w.V2_SIGNATURE],
            stdin=w.vector('v2'))
        self.assertEqual(rc, 0, out + err)
        # v1's signature on v2: a different body, not a format problem
        rc, out, err = self.run_verify(
            ['--secret', SECRET, '--signature', w.V1_SIGNATURE],
            stdin=w.vector('v2'), bodies=(w.vector('v2'),))
        self.assertEqual(rc, 1, out + err)
        self.assertIn('A different secret', out)

    def test_usage_errors(self):
        with tempfile.NamedTemporaryFile() as empty:
            cases = [
                ([], {}),
                (['--secret', SECRET], {}),                 # no signature
                (['--signature', w.V1_SIGNATURE], {}),      # no secret
                (['--signature', w.V1_SIGNATURE], {'WHR_SECRET': ''}),
                (['--signature'], {}),
                (['--secret', SECRET, '--signature', 'x', '--nosuch'], {}),
                (['--secret', SECRET, '--secret-file', empty.name,
                  '--signature', 'x'], {}),
                (['--secret', SECRET, '--secret', SECRET,
                  '--signature', 'x'], {}),
                (['--secret', '', '--signature', 'x'], {}),
                (['--secret-file', empty.name, '--signature', 'x'], {}),
                (['--secret-file', '/nonexistent/secret',
                  '--signature', 'x'], {}),
                (['--secret', SECRET, '--signature', 'x',
                  '/nonexistent/body'], {}),
                (['--secret', SECRET, '--signature', 'x', empty.name,
                  empty.name], {}),
            ]
            for args, env in cases:
                with self.subTest(args=args, env=env):
                    rc, out, err = self.run_verify(args, env=env)
                    self.assertEqual(rc, 2, out + err)
                    self.assertEqual(out, '')
                    self.assertTrue(err.startswith('whr verify: '), err)

    def test_help(self):
        rc, out, err = self.run_verify(['--help'])
        self.assertEqual(rc, 0)
        for text in ('--signature VALUE', '--secret-file FILE',
                     '--secret SECRET', 'WHR_SECRET', 'standard input',
                     'Exit status', '0  the signature verifies',
                     '1  it does not verify', '2  usage error',
                     'each receiver id has its own'):
            self.assertIn(text, out)
        self.assertTrue(all(len(l) <= 80 for l in out.splitlines()))

    def test_empty_body(self):
        sig = w.sign(SECRET, b'')
        rc, out, err = self.run_verify(['--secret', SECRET, '--signature',
                                        sig], stdin=b'')
        self.assertEqual(rc, 0, out + err)


class HeaderFormat(VerifyTestCase):
    """Cause 1: what is wrong with the value itself."""

    def test_missing_prefix(self):
        self.assert_fails(v1(), HEX, '"sha256=" prefix is missing',
                          "It verifies with the header's value fixed")

    def test_other_algorithm(self):
        self.assert_fails(v1(), 'sha1=' + HEX, 'another algorithm, "sha1="',
                          'accepts only sha256=')
        self.assert_fails(v1(), 'sha1=' + HEX[:40], '"sha1="',
                          '40 hex digits, not 64',
                          'the length of an HMAC-SHA1', 'cannot be compared')
        self.assert_fails(v1(), 'HMAC-SHA256=' + HEX,
                          'names the algorithm "HMAC-SHA256"',
                          "It verifies with the header's value fixed")

    def test_not_hex(self):
        flat = self.assert_fails(v1(), 'sha256=' + HEX[:10] + 'G' + HEX[11:],
                                 "1 character that is not hex digits "
                                 "(the first, 'G', after 10 digits)",
                                 'odd number of hex digits (63)')
        self.assertNotIn('It verifies', flat)

    def test_odd_length(self):
        self.assert_fails(v1(), 'sha256=' + HEX[:63],
                          'odd number of hex digits (63)',
                          '63 hex digits, not 64', 'cannot be compared')

    def test_truncated(self):
        flat = self.assert_fails(v1(), 'sha256=' + HEX[:62],
                                 '62 hex digits, not 64: it is cut short '
                                 '(2 missing)', 'cannot be compared')
        self.assertNotIn('A different secret', flat)

    def test_too_long(self):
        self.assert_fails(v1(), 'sha256=' + HEX + 'AB',
                          '66 hex digits, not 64 (2 too many)',
                          'It verifies with only the first 64 digits')
        self.assert_fails(v1(), 'sha256=AB' + HEX,
                          'It verifies with only the last 64 digits')

    def test_spaces_inside(self):
        self.assert_fails(v1(), 'sha256=' + HEX[:32] + ' ' + HEX[32:],
                          '1 space inside the hex digits',
                          "It verifies with the header's value fixed")
        self.assert_fails(v1(), 'sha256=' + ' '.join(HEX[i:i + 8] for i in
                                                     range(0, 64, 8)),
                          '7 spaces inside')

    def test_quotes(self):
        for q1, q2 in (('"', '"'), ("'", "'"), ('\u201c', '\u201d')):
            with self.subTest(quote=q1):
                self.assert_fails(v1(), q1 + w.V1_SIGNATURE + q2,
                                  'it is in quotes',
                                  "It verifies with the header's value "
                                  'fixed')
        self.assert_fails(v1(), w.V1_SIGNATURE + '"', 'a stray quote at its '
                          'end')

    def test_header_name_included(self):
        self.assert_fails(v1(), 'ms-signature: ' + w.V1_SIGNATURE,
                          'includes the header\'s name',
                          "It verifies with the header's value fixed")

    def test_base64(self):
        import base64
        b64 = base64.b64encode(bytes.fromhex(HEX)).decode()
        self.assert_fails(v1(), 'sha256=' + b64, 'looks like base64',
                          'It verifies with the header\'s value decoded '
                          'from base64 to hex')

    def test_empty_and_shapeless(self):
        self.assert_fails(v1(), '', 'it is empty', 'cannot be compared')
        self.assert_fails(v1(), '=', "only '='")
        self.assert_fails(v1(), 'k1=v1;k2=v2', "3 parts separated by '='")
        self.assert_fails(v1(), 'sha256', 'no hex digits after')
        self.assert_fails(v1(), 'signature please', 'not of the form')

    def test_accepted_forms_verify(self):
        # what the receiver accepts (PROTOCOL.md §3) verifies here too
        for sig in (w.V1_SIGNATURE.lower(), ' SHA256 = ' + HEX + ' ',
                    'sha256==' + HEX):
            with self.subTest(sig=sig):
                rc, out, err = self.verify_file(v1(), sig)
                self.assertEqual(rc, 0, out + err)

    def test_prefix_and_length_shown(self):
        rc, out, err = self.verify_file(v1(), '"' + w.V1_SIGNATURE + '"')
        self.assertIn('signature: 73 characters, starting "\\"sha256=11BD..."',
                      out)
        rc, out, err = self.verify_file(v1(), HEX)
        self.assertIn('signature: 64 characters, starting "11BD..."', out)


class Secret(VerifyTestCase):
    """Cause 2: whitespace around the secret."""

    def test_whitespace_tried_trimmed(self):
        for secret in (' ' + SECRET, SECRET + ' ', SECRET + '\n',
                       '\t' + SECRET + '\r\n', SECRET + '\u00a0',
                       '\ufeff' + SECRET):
            with self.subTest(secret=secret):
                self.assert_fails(v1(), w.V1_SIGNATURE,
                                  'The secret has whitespace or invisible '
                                  'characters', 'It verifies with the '
                                  'secret trimmed', secret=secret)

    def test_whitespace_in_secret_file(self):
        with tempfile.NamedTemporaryFile('w') as f:
            f.write('  ' + SECRET + '  \n')
            f.flush()
            rc, out, err = self.run_verify(
                ['--secret-file', f.name, '--signature', w.V1_SIGNATURE],
                stdin=v1())
        self.assertEqual(rc, 1)
        self.assertIn('at its start and end (4 characters)',
                      ' '.join(out.split()))

    def test_whitespace_that_verifies_gets_a_note(self):
        secret = SECRET + ' '
        body = v1()
        rc, out, err = self.verify_file(body, w.sign(secret, body), secret)
        self.assertEqual(rc, 0, out + err)
        self.assertIn('note: the secret has whitespace', out)

    def test_short_secret_note(self):
        rc, out, err = self.verify_file(v1(), w.sign('short', v1()), 'short')
        self.assertEqual(rc, 0, out + err)
        self.assertIn('the secret is 5 characters long', out)

    def test_different_secret(self):
        for secret in (SECRET + 'x', SECRET.upper(), w.V0_SECRET):
            with self.subTest(secret=secret):
                flat = self.assert_fails(
                    v1(), w.V1_SIGNATURE, '1. A different secret',
                    'Each receiver id has its own secret', secret=secret)
                self.assertNotIn('It verifies', flat)


class Body(VerifyTestCase):
    """Cause 3: the body changed in transit; each change is named."""

    def check(self, signed, given, *expected):
        flat = self.assert_fails(given, w.sign(SECRET, signed),
                                 'The body was changed after it was signed',
                                 'It verifies with the body as it was signed',
                                 *expected)
        self.assertNotIn('header', flat.split('Likely causes')[1])
        return flat

    def test_crlf_turned_into_lf(self):
        self.check(v1(), to_lf(v1()), 'its CRLF line ends were turned into '
                   'LF.')

    def test_lf_turned_into_crlf(self):
        self.check(to_lf(v1()), v1(), 'its LF line ends were turned into '
                   'CRLF.')

    def test_bom(self):
        self.check(v1(), BOM + v1(), 'a UTF-8 byte order mark was added.')
        self.check(BOM + v1(), v1(), 'a UTF-8 byte order mark was removed.')

    def test_final_line_end(self):
        self.check(v1(), v1() + b'\r\n', 'a line end was added at its end.')
        self.check(v1(), v1() + b'\n', 'a line end was added at its end.')
        self.check(v1() + b'\n', v1(), 'its final line end was removed.')
        self.check(v1() + b'\r\n', v1(), 'its final line end was removed.')

    def test_reserialised(self):
        self.check(compact(v1()), v1(), 'its JSON was re-serialised (it was '
                   'signed compact')
        self.check(v1(), compact(v1()), 'signed indented with CRLF line ends')
        self.check(indented(v1(), False), compact(v1()),
                   'signed indented with LF line ends')
        # a pretty-printer's output (4 spaces, a final newline)
        pretty = json.dumps(json.loads(v1()), indent=4).encode() + b'\n'
        self.check(v1(), pretty, 'signed indented with CRLF line ends')

    def test_combinations(self):
        self.check(v1(), BOM + to_lf(v1()),
                   'its CRLF line ends were turned into LF and a UTF-8 byte '
                   'order mark was added.')
        self.check(v1(), to_lf(v1()) + b'\n',
                   'its CRLF line ends were turned into LF and a line end '
                   'was added at its end.')
        self.check(v1(), BOM + to_lf(v1()) + b'\n',
                   'its CRLF line ends were turned into LF, a UTF-8 byte '
                   'order mark was added and a line end was added at its '
                   'end.')
        self.check(BOM + v1(), to_lf(v1()), 'its CRLF line ends were turned '
                   'into LF and a UTF-8 byte order mark was removed.')

    def test_not_json(self):
        signed = b'not json\r\nat all'
        self.check(signed, to_lf(signed), 'its CRLF line ends were turned '
                   'into LF.')


class Everything(VerifyTestCase):
    """Every cause that applies is reported, in the order checked."""

    def test_header_secret_and_body(self):
        flat = self.assert_fails(
            BOM + to_lf(v1()), '"' + HEX + '"',
            '1. The header\'s format is wrong:', 'it is in quotes',
            '"sha256=" prefix is missing',
            '2. The secret has whitespace', 'Without them, the signature '
            'verifies', '3. The body was changed after it was signed: its '
            'CRLF line ends were turned into LF and a UTF-8 byte order mark '
            'was added.',
            "It verifies with the header's value fixed as said above, the "
            'secret trimmed and the body as it was signed.',
            secret=SECRET + '\n')
        self.assertLess(flat.index('1.'), flat.index('2.'))
        self.assertLess(flat.index('2.'), flat.index('3.'))

    def test_header_and_different_secret(self):
        flat = self.assert_fails(v1(), 'sha1=' + HEX, 'another algorithm',
                                 '2. A different secret',
                                 secret=SECRET + 'x')
        self.assertNotIn('It verifies', flat)

    def test_output_lines_fit(self):
        rc, out, err = self.verify_file(BOM + to_lf(v1()), '"' + HEX + '"',
                                        SECRET + ' ')
        self.assertEqual(rc, 1)
        self.assertTrue(all(len(l) <= 80 for l in out.splitlines()), out)


if __name__ == '__main__':
    w.main()
