"""The one error that carries a field: input a service refuses, naming the field at fault
(None when the input as a whole is refused). Views turn it into a form error on that
field, the API into a 4xx JSON body naming it. In core, so every app raises it."""


class FieldError(ValueError):
    """Refused input: `field` names what is wrong (or None), `message` says why, for a
    person. str() is the message."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    @property
    def error(self) -> str:
        """The message (the name the ingestion results use)."""
        return self.message
