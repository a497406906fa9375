"""The WSGI entry point: `gunicorn wsgi:app`."""

from tsapi import create_app

app = create_app()
