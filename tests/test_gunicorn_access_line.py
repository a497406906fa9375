"""gunicorn's access line is built only when GUNICORN_ACCESS_LOG asks for it: the app writes
its own, and gunicorn built every request's fields for a logger that wrote them nowhere."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from gunicorn.config import Config

ROOT = Path(__file__).resolve().parent.parent


def server_logger(monkeypatch, tmp_path, access_log: str | None):
    """gunicorn.conf.py's logger class, made (without its logging setup) as gunicorn makes
    it under that GUNICORN_ACCESS_LOG; and the requests whose access fields it built."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # or the file makes one
    monkeypatch.setenv("GUNICORN_REQUEST_READ_TIMEOUT", "30")
    if access_log is None:
        monkeypatch.delenv("GUNICORN_ACCESS_LOG", raising=False)
    else:
        monkeypatch.setenv("GUNICORN_ACCESS_LOG", access_log)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    for name in ("accesslog", "logconfig_dict", "logger_class"):
        if name in settings:
            cfg.set(name, settings[name])
    logger = cfg.logger_class.__new__(cfg.logger_class)  # Logger.__init__ configures logging
    logger.cfg = cfg
    built = []
    logger.atoms = lambda resp, req, environ, request_time: built.append(req) or {}
    logger.access_log = type("Quiet", (), {"info": lambda *args, **kwargs: None})()
    return logger, built


def test_no_access_fields_are_built_without_gunicorns_access_log(monkeypatch, tmp_path):
    logger, built = server_logger(monkeypatch, tmp_path, None)
    logger.access(None, "request", {}, None)
    assert built == []


@pytest.mark.parametrize("access_log", ["-", "/dev/null"])
def test_gunicorns_access_log_asked_for_gets_its_fields(monkeypatch, tmp_path, access_log):
    logger, built = server_logger(monkeypatch, tmp_path, access_log)
    logger.access(None, "request", {}, None)
    assert built == ["request"]
