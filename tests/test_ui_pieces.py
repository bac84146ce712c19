"""Board lines made from pieces are what rich's own `Text` operations make of the same parts."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.text import Span, Text

from ce.ui.pieces import fitted_line, piece, runs, styled

STYLES = st.sampled_from(["", "bold", "dim", "bold cyan", "green"])
# Drawing inputs is slow on a loaded machine: not a failure of what is tested.
QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXTS = st.text(alphabet=st.sampled_from(list("ab -·漢\x07\r")), max_size=8)


@st.composite
def parts(draw: st.DrawFn) -> Text:
    text = Text(draw(TEXTS), draw(STYLES))
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, len(text.plain)))
        text.spans.append(Span(start, draw(st.integers(start, len(text.plain) + 2)), "red"))
    return text


def what_rich_makes(texts: list[Text], width: int) -> Text:
    line = Text()
    for text in texts:
        line.append(text)
    line.rstrip()
    line.truncate(width, overflow="ellipsis")
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


def same(a: Text, b: Text) -> bool:
    flags = ("style", "justify", "overflow", "no_wrap", "end", "tab_size")
    return (a.plain, a.spans) == (b.plain, b.spans) and all(
        getattr(a, f) == getattr(b, f) for f in flags
    )


@QUICK
@given(st.lists(parts(), max_size=6), st.integers(1, 40))
def test_a_line_of_pieces_is_the_texts_appended_and_fitted(texts: list[Text], width: int) -> None:
    assert same(fitted_line([piece(text) for text in texts], width), what_rich_makes(texts, width))


@QUICK
@given(st.lists(parts(), max_size=6), st.integers(1, 40), st.data())
def test_runs_of_pieces_make_the_same_line(
    texts: list[Text], width: int, data: st.DataObject
) -> None:
    pieces = [piece(text) for text in texts]
    holes = data.draw(st.sets(st.sampled_from(range(len(pieces))))) if pieces else set()
    merged = runs([None if n in holes else p for n, p in enumerate(pieces)])
    filled = iter(pieces[n] for n in sorted(holes))
    line = fitted_line([next(filled) if p is None else p for p in merged], width)
    assert same(line, what_rich_makes(texts, width))


@QUICK
@given(TEXTS, STYLES)
def test_a_styled_piece_is_the_piece_of_its_text(text: str, style: str) -> None:
    assert styled(text, style) == piece(Text(text, style))
