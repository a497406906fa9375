"""Use cases: plain typed arguments in, domain results or domain errors out; no HTTP."""
