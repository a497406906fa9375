"""Line protocol read as it arrives gives exactly what reading the whole body gives.

Strings may span lines, so a piece can end inside one: the reader must read that line again
with more text, wherever the body is cut.
"""

import random

import pytest

from tsapi.errors import PayloadTooLarge
from tsapi.formats.line_protocol import MAX_LINE_CHARS, LineReader, parse

BODY = ('m,t=a v=1 1\n# comment\nm s="multi\nline \\" x" 2\n\r\nm v=2i,w="a" 3\nnot a line\n'
        'm,t=b\\ c v=1.5 4\nm s="open\n') * 40


@pytest.mark.parametrize("seed", range(20))
def test_any_cut_into_pieces_reads_like_the_whole_body(seed):
    want_lines, want_errors = parse(BODY)
    assert want_lines and want_errors  # the body has both
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(BODY)), rng.randint(1, 200)))
    pieces = [BODY[i:j] for i, j in zip([0, *cuts], [*cuts, len(BODY)], strict=True)]
    errors = []
    assert list(LineReader(errors).lines(pieces)) == want_lines
    assert errors == want_errors


def test_the_line_limit_stops_reading_before_the_rest_arrives():
    consumed = []

    def pieces():
        for i in range(1000):
            consumed.append(i)
            yield "m v=1 1\n" * 100

    with pytest.raises(PayloadTooLarge):
        list(LineReader([], max_lines=250).lines(pieces()))
    assert len(consumed) <= 4


def test_a_line_longer_than_the_limit_is_refused_without_waiting_for_its_end():
    def pieces():
        yield 'm s="'
        while True:
            yield "x" * 65536  # a string that never ends

    with pytest.raises(PayloadTooLarge, match="longer than"):
        list(LineReader([]).lines(pieces()))
    assert MAX_LINE_CHARS >= 65536 * 2 + 32 * 2048  # room for the longest real point
