"""What must never appear in a log, an error or a tool's output: the
secrets and the MACs sent."""

import re

from .environment import WRAPPER


# Every ms-signature value sent by this process: a full MAC must never
# appear in a log. Only long hex runs are kept (a MAC is 64 hex digits;
# delivery ids, which are logged, have 32).
SENT_MACS = set()
_HEX_RUN = re.compile(r'[0-9A-Fa-f]{48,}')


def _note_signature(value):
    if isinstance(value, bytes):
        value = value.decode('latin-1')
    for run in _HEX_RUN.findall(value):
        SENT_MACS.add(run.lower())


def secrets_in_text(text):
    """The secrets of a secrets list (the MS_WebHookReceiverSecret_Custom
    format, commas or newlines between entries), as the receiver would
    read them, and every long part of a malformed entry too."""
    found = set()
    for entry in re.split(r'[,\r\n]', text):
        parts = [p.strip() for p in entry.split('=') if p.strip()]
        if len(parts) == 1:
            found.add(parts[0])
        elif len(parts) == 2:
            found.add(parts[1])
        else:
            found.update(parts[1:])
    # Short strings are not secrets anyone would configure, and would
    # match innocent text.
    return {s for s in found if len(s) >= 16}


SECRET_ENV = ('MS_WebHookReceiverSecret_Custom', 'WHR_PREVIOUS_SECRETS')
SECRET_FILE_ENV = ('WHR_SECRETS_FILE', 'MS_WebHookReceiverSecret_Custom_FILE',
                   'WHR_PREVIOUS_SECRETS_FILE')
SECRET_FILE_FLAGS = ('--secrets-file', '--previous-secrets-file')


def secrets_of(env, args):
    """Every secret configured through @env or the secrets files named in
    @env or @args."""
    found = set()
    files = []
    env = env or {}
    for k in SECRET_ENV:
        if env.get(k):
            found |= secrets_in_text(env[k])
    for k in SECRET_FILE_ENV:
        if env.get(k):
            files.append(env[k])
    args = list(args)
    for i, a in enumerate(args):
        for flag in SECRET_FILE_FLAGS:
            if a == flag and i + 1 < len(args):
                files.append(args[i + 1])
            elif a.startswith(flag + '='):
                files.append(a[len(flag) + 1:])
    # The tools' own: whr send/probe/verify --secret, --secret-file and
    # WHR_SECRET hold one secret each, used as is.
    tool_secrets = []
    if env.get('WHR_SECRET'):
        tool_secrets.append(env['WHR_SECRET'])
    for i, a in enumerate(args):
        if a == '--secret' and i + 1 < len(args):
            tool_secrets.append(args[i + 1])
        elif a.startswith('--secret='):
            tool_secrets.append(a[len('--secret='):])
        elif a == '--secret-file' and i + 1 < len(args):
            try:
                with open(args[i + 1], 'rb') as f:
                    tool_secrets.append(f.read().decode('utf-8', 'replace')
                                        .rstrip('\r\n'))
            except OSError:
                pass
    # Only secrets long enough to be unmistakable in a log.
    found |= {t for t in tool_secrets if len(t.strip()) >= 8}
    for path in files:
        try:
            with open(path, 'rb') as f:
                found |= secrets_in_text(f.read().decode('utf-8', 'replace'))
        except OSError:
            pass
    return found


def assert_nothing_secret(text, secrets, what='output'):
    """Fail when @text holds a secret or a MAC this process sent."""
    low = text.lower()
    for s in secrets:
        if s in text:
            raise AssertionError('a configured secret (%d chars, starting '
                                 '%r) appears in the %s:\n%s'
                                 % (len(s), s[:4], what, text))
    for m in SENT_MACS:
        if m in low:
            raise AssertionError('a signature value sent by the test '
                                 '(%s...) appears in the %s:\n%s'
                                 % (m[:8], what, text))


# Lines a wrapper (valgrind) adds to the programs' standard error.
_WRAPPER_LINE = re.compile(r'^(==\d+==|--\d+--|\*\*\d+\*\*)')


def program_lines(text):
    """The lines of @text written by the program itself."""
    return [l for l in text.splitlines()
            if l and not (WRAPPER and _WRAPPER_LINE.match(l))]
