"""schemathesis generates requests from the live OpenAPI document and checks the answers."""

import hypothesis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES_PER_OPERATION = 25


def test_every_operation_answers_generated_requests_as_documented(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9

    for operation in operations:
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                             operation.as_strategy(GenerationMode.NEGATIVE))

        @given(case=strategy)
        @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None,
                  database=None, suppress_health_check=list(HealthCheck),
                  phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
        def run(case):
            case.call_and_validate(checks=CHECKS)

        try:
            run()
        except Exception as exc:  # one operation's failure must not hide another's
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:3000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
