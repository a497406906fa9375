"""The framework's ceiling for tools/bench_small.py: a Flask app that reads the body and
answers 204, served by gunicorn exactly as tsapi is. No Flask service can answer the same
requests faster on the same machine, so its rate bounds what tsapi's write path can reach."""

from flask import Flask, request

app = Flask(__name__)


@app.get("/health")
def health():
    return "", 200


@app.post("/write")
def write():
    request.get_data()
    return "", 204
