"""InfluxQL, the query language of InfluxDB 1.x: a scanner, a parser and typed statements.

Pure code: parse_query turns text into statements; tsapi.services.influxql runs them.
"""

from tsapi.formats.influxql.parser import parse_query
from tsapi.formats.influxql.tokens import InfluxQLError, ParseError

__all__ = ["InfluxQLError", "ParseError", "parse_query"]
