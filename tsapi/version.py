"""The version of tsapi, reported by / and the OpenAPI document."""

__version__ = "0.1.0"
