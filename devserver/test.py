"""`python -m devserver.test [pytest args]`: the test suite on real PostgreSQL and Redis.

Whatever DATABASE_URL / REDIS_URL leave unset is served by embedded servers in `var/test/`,
a cluster of its own: tests never touch the data of `make run`, and both can run at the
same time (the ports differ; a busy one falls back to a free one). pytest-django creates
`test_guishu` on that server, which works because the embedded role is a superuser.
The exit status is pytest's.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

from devserver.embedded import DEFAULT_VAR_DIR, REPO_ROOT, EmbeddedServerError, say, services_env

TEST_VAR_DIR = DEFAULT_VAR_DIR / "test"
TEST_PG_PORT = 54339
TEST_REDIS_PORT = 63809


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with services_env(TEST_VAR_DIR, pg_port=TEST_PG_PORT, redis_port=TEST_REDIS_PORT) as env:
            return _run_pytest(args, env)
    except EmbeddedServerError as exc:
        say(str(exc))
        return 1
    except KeyboardInterrupt:  # Ctrl-C while the servers were starting
        return 130


def _run_pytest(args: list[str], env: dict[str, str]) -> int:
    # pytest stays in our process group, the terminal's foreground one, so that Ctrl-C
    # reaches it directly (it then reports and drops its test database) and `--pdb` can
    # read the terminal. We therefore ignore SIGINT meanwhile instead of forwarding a
    # second one, and wait for pytest before stopping the servers. SIGTERM/SIGHUP, which
    # may be aimed at us alone, are passed on.
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=REPO_ROOT, env=env)

    def forward(signum: int, _frame: FrameType | None) -> None:
        proc.send_signal(signum)

    saved = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
        signal.SIGHUP: signal.signal(signal.SIGHUP, forward),
    }
    try:
        code = proc.wait()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    # Killed by a signal: report it the way a shell would (128 + signal number).
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
