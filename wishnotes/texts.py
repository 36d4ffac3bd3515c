"""What counts as text a partner may write: checked the same way for notes and every practice."""

from __future__ import annotations

import unicodedata

from flask_babel import format_number

from wishnotes.errors import InvalidInput
from wishnotes.i18n import _l

# Line breaks and tabs are text; other control characters, lone surrogates and private-use
# characters are not (unassigned ones are allowed: new emoji may be newer than this Python).
_ALLOWED_CONTROLS = {"\n", "\t"}
_REJECTED_CATEGORIES = {"Cc", "Cs", "Co"}


def check_characters(value: str, *, field: str) -> None:
    """Raise InvalidInput if `value` holds characters a page cannot show."""
    for char in value:
        if char not in _ALLOWED_CONTROLS and unicodedata.category(char) in _REJECTED_CATEGORIES:
            raise InvalidInput(
                _l("This contains characters that cannot be shown. Please remove them."),
                field=field,
            )


def lines(text: str | None, *, max_chars: int, field: str, empty: str) -> str:
    """Return typed text with line breaks as typed; InvalidInput if empty, long or unshowable."""
    # Browsers send a textarea's line breaks as CRLF; count them as one character, as typed.
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise InvalidInput(empty, field=field)
    if len(text) > max_chars:
        raise InvalidInput(
            _l(
                "Please keep this under %(max)s characters; it has %(count)s.",
                max=format_number(max_chars),
                count=format_number(len(text)),
            ),
            field=field,
        )
    check_characters(text, field=field)
    return text


def one_line(text: str | None, *, max_chars: int, field: str) -> str | None:
    """Return a short optional text on one line, or None when left empty."""
    text = " ".join((text or "").split())
    if not text:
        return None
    if len(text) > max_chars:
        raise InvalidInput(
            _l("Please keep this under %(num)d characters.", num=max_chars), field=field
        )
    check_characters(text, field=field)
    return text
