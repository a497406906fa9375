"""The HTTP layer, the only package that imports Flask: wiring, errors, auth, resources."""
