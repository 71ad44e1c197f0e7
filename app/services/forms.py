"""Reading a submitted form into a service's command (a frozen dataclass).

Each command's ``from_form`` only reads: it picks its keys and strips them. Checking the
values is the service's job, so the same rules hold whatever built the command.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any


def stripped(form: Mapping[str, str], keys: Iterable[str]) -> dict[str, str]:
    """The form's value of each key, stripped (``""`` when absent)."""
    return {key: (form.get(key) or "").strip() for key in keys}


def stripped_fields(form: Mapping[str, str], command: type[Any]) -> dict[str, str]:
    """:func:`stripped` for every field of the dataclass ``command``."""
    return stripped(form, (f.name for f in fields(command)))
