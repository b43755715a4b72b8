"""Shared harness of whr's integration tests.

The tests drive the real `whr serve` binary (WHR_BIN), or the recorder, a
program of ours that links libwhr as a customer would (WHR_TEST_RECORDER),
over real sockets, with Python's standard library only.

Environment:
  WHR_BIN            the whr binary
  WHR_TEST_RECORDER  the recorder program (tests/integration/recorder.c)
  WHR_TEST_DATA      tests/data
  WHR_TEST_WRAPPER   optional command put in front of every program, split
                     like a shell would, e.g.
                     "valgrind --error-exitcode=99 --leak-check=full"

Every server is started with a minimal environment (PATH and the sanitizer
settings, plus what the test passes), so a developer's own
MS_WebHookReceiverSecret_Custom or WHR_* variables never leak in.
"""

from .environment import (  # noqa: F401
    JSON_TYPE,
    PASSTHROUGH_ENV,
    SLOW,
    WEBHOOK,
    WRAPPER,
    data_path,
    minimal_env,
    recorder_bin,
    skip_if_wrapped,
    slow,
    timing_bound,
    wait_until,
    whr_bin,
    wrapped)
from .bodies import (  # noqa: F401
    RANDOM,
    V0_SECRET,
    V0_SIGNATURE,
    V1_SECRET,
    V1_SIGNATURE,
    V2_SIGNATURE,
    delivery,
    mac_hex,
    notification_spans,
    secret,
    sign,
    to_json_text,
    vector)
from .secrecy import (  # noqa: F401
    SECRET_ENV,
    SECRET_FILE_ENV,
    SECRET_FILE_FLAGS,
    SENT_MACS,
    assert_nothing_secret,
    program_lines,
    secrets_in_text,
    secrets_of)
from .records import (  # noqa: F401
    NONE,
    Record,
    unescape)
from .http import (  # noqa: F401
    Closed,
    Connection,
    HeaderList,
    Response,
    build_request,
    get,
    post,
    request)
from .load import (  # noqa: F401
    Sender,
    in_threads,
    kill_under_load)
from .sockets import (  # noqa: F401
    ephemeral_range,
    free_port,
    have_ipv6_loopback,
    restart_port,
    server_unread_bytes,
    wait_server_read)
from .server import (  # noqa: F401
    Server,
    ServerError,
    ServerTestCase,
    cleaned_up_on_error,
    command,
    main,
    program_path,
    run_whr,
    serve_refused,
    stop_and_clean,
    with_both_connections_taken)
from .checks import (  # noqa: F401
    assert_error_body,
    inbox_query,
    log_fields)
