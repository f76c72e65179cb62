"""What an ``m2m_changed`` hook is for: one many-to-many relation and some of its actions.

Django sends ``m2m_changed`` with the relation's through model as ``sender``, for
changes made from either side. So a relation is named here by one model and the
name of its field (``Article.tags``) or of its reverse accessor (``Tag.articles``),
and identified at dispatch by its through model, which the registry fills in once
the models are loaded.

This module imports nothing from signalhooks: every other module may import it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model

#: Django's ``m2m_changed`` actions, in the order a change sends them.
ACTIONS = ("pre_add", "post_add", "pre_remove", "post_remove", "pre_clear", "post_clear")
#: The actions an ``m2m_changed`` hook runs for by default: after the change.
POST_ACTIONS = frozenset(a for a in ACTIONS if a.startswith("post_"))


def relation_names(model: type[Model]) -> list[str]:
    """Return what names a many-to-many relation of ``model``: fields and reverse accessors."""
    names = [f.name for f in model._meta.many_to_many]
    # A symmetrical relation to self has no reverse accessor (None).
    names += [
        str(accessor)
        for rel in model._meta.related_objects
        if rel.many_to_many and (accessor := rel.get_accessor_name())
    ]
    return names


def find_through(model: type[Model], name: str) -> type[Model] | str:
    """Return the through model of the many-to-many relation ``name`` of ``model``.

    ``name`` is a ``ManyToManyField`` of ``model`` or the accessor of one pointing at
    it. The through model is still a string while its app is not loaded. Raise
    ValueError naming the model, the field and the fix for anything else.
    """
    for field in model._meta.many_to_many:
        if field.name == name:
            forward: type[Model] | str | None = field.remote_field.through
            assert forward is not None  # a ManyToManyField always has one
            return forward
    for rel in model._meta.related_objects:
        if rel.many_to_many and rel.get_accessor_name() == name:
            through: type[Model] = rel.through  # type: ignore[attr-defined]
            return through
    label = model._meta.label
    try:
        other: Any = model._meta.get_field(name)
    except FieldDoesNotExist:
        what = "is not a field of it"
    else:
        what = f"is a {type(other).__name__}, not a many-to-many field"
    valid = relation_names(model)
    fix = (
        f"Use one of its many-to-many relations: {', '.join(valid)}."
        if valid
        else f"{label} has no many-to-many relation; hook field changes with "
        f"@post_save({model.__name__}, changed=...)."
    )
    raise ValueError(f"@m2m_changed({label}.{name}): {label}.{name} {what}. {fix}")


@dataclass(frozen=True, slots=True)
class Relation:
    """The many-to-many relation (``name`` on the hook's model) and the actions a hook wants."""

    name: str
    actions: frozenset[str]
    #: The relation's through model: Django's ``sender``. Set by :meth:`bind`.
    through: type[Model] | None = None
    #: ``"app_label.Model.name"``, for listings and errors. Set by :meth:`bind`.
    label: str = ""

    def bind(self, model: type[Model]) -> Relation:
        """Return this relation resolved on ``model`` (ValueError if it is not one)."""
        through = find_through(model, self.name)
        assert not isinstance(through, str)  # models are loaded when the registry binds
        return dataclasses.replace(self, through=through, label=f"{model._meta.label}.{self.name}")

    def accepts(self, sender: type[Model], action: str) -> bool:
        """Return whether a change sent by ``sender`` with ``action`` is this hook's."""
        return sender is self.through and action in self.actions

    def describe(self) -> dict[str, Any]:
        """Return the conditions ``manage.py signalhooks`` shows."""
        return {"field": self.label, "action": [a for a in ACTIONS if a in self.actions]}
