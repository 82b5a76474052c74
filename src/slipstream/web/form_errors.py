"""What a form shows when its input is refused: a message beside each field at fault (a
service's refusal names its field; the page maps that name to its own input), or one for the
form as a whole, and the status the page answers with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from slipstream.errors import ConflictError, InvalidInputError, SlipstreamError

WHOLE_FORM = "form"


@dataclass(slots=True)
class FormErrors:
    """Messages by input name (WHOLE_FORM for the form itself); empty when all is well."""

    messages: dict[str, str] = field(default_factory=dict)
    status: int = 400

    def add(self, name: str, message: str) -> None:
        self.messages.setdefault(name, message)

    def get(self, name: str) -> str | None:
        return self.messages.get(name)

    def __bool__(self) -> bool:
        return bool(self.messages)

    @classmethod
    def of(
        cls, refusal: SlipstreamError, inputs: Mapping[str, str], *, conflict: str = WHOLE_FORM
    ) -> FormErrors:
        """A service's refusal as form errors: `inputs` maps the service's field names to
        the form's inputs; a field the form has no input for is told for the whole form.
        Conflicts (a name taken) answer 409, beside the `conflict` input; other refusals
        400."""
        name = WHOLE_FORM
        if isinstance(refusal, InvalidInputError) and refusal.field is not None:
            name = inputs.get(refusal.field, WHOLE_FORM)
        if isinstance(refusal, ConflictError):
            name = conflict
        status = 409 if isinstance(refusal, ConflictError) else 400
        return cls({name: str(refusal)}, status)
