"""Pure formats: parsers, validators and renderers that do no I/O."""
