"""Logging: the service's own loggers write to stderr, where gunicorn collects them."""

import logging

from flask import Flask


def configure_logging(app: Flask) -> None:
    logger = logging.getLogger("tsapi")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if app.debug else logging.INFO)
