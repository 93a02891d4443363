"""Text checks that ingestion and spend controls share."""


def encodable(value: str) -> bool:
    """Whether the text can be stored: lone surrogates from JSON escapes like "\\ud800"
    are not encodable as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
