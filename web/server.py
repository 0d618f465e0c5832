"""Serving the dashboard in the bot's event loop: uvicorn's `Server.serve()` as a task.

The socket is bound by us, before the task starts, so a port in use is known at once (and
reported in one line) rather than inside uvicorn. uvicorn's own signal handling is off: the
bot (PTB's run_polling, or bot/webhook.py) owns SIGINT and SIGTERM, and stops the server in
post_shutdown. Access logs are off: a sign-in link's address holds its token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the bot owns the signals; post_shutdown stops this server


def bind(listen: str, port: int) -> socket.socket:
    """A listening socket; OSError (say, the port is in use) is the caller's to report."""
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listen, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def start(app: ASGIApp, sock: socket.socket) -> Callable[[], Awaitable[None]]:
    """Serve `app` on `sock` in the running loop; returns what stops it."""
    config = uvicorn.Config(
        app,
        log_config=None,  # Rapport's logging (bot/logs.py) stays as it is
        access_log=False,
        lifespan="off",
        server_header=False,
        proxy_headers=True,  # X-Forwarded-Proto from the reverse proxy on 127.0.0.1
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="rapport-web")

    def ended(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("the web dashboard stopped: %s", type(done.exception()).__name__)

    task.add_done_callback(ended)

    async def stop() -> None:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("the web dashboard did not stop in time; cancelling it")
            task.cancel()
        except Exception as exc:
            log.error("the web dashboard failed: %s", type(exc).__name__)
        finally:
            sock.close()

    return stop
