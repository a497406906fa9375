"""gunicorn's logger, its access lines built only when GUNICORN_ACCESS_LOG asks for them."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger


class GunicornLogger(Logger):
    """gunicorn's own logger (gunicorn.conf.py's logger_class), less the access line nobody
    reads: the app writes its own (tsapi.api.logs), and with logconfig_dict set gunicorn
    built every request's access fields (its headers, sizes and times, formatted) for an
    access logger without a handler. GUNICORN_ACCESS_LOG brings the line back."""

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)
