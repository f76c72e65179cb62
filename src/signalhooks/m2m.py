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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Field, Model
from django.db.models.fields.related_descriptors import ManyToManyDescriptor

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


def relation_of(field: object) -> tuple[type[Model] | str, str]:
    """Return the model and the relation name that ``field`` names (refused if it is none)."""
    if isinstance(field, str):
        app_label, _, rest = field.partition(".")
        model_name, _, name = rest.partition(".")
        if not (app_label and model_name and name) or "." in name:
            raise TypeError(
                f"@m2m_changed({field!r}): name a many-to-many field as "
                '"app_label.Model.field", e.g. "blog.Article.tags", or pass its descriptor, '
                "e.g. Article.tags."
            )
        return f"{app_label}.{model_name}", name
    if isinstance(field, ManyToManyDescriptor):
        if field.reverse:
            return field.rel.model, str(field.rel.get_accessor_name())
        return field.field.model, field.field.name
    other = getattr(field, "field", None)
    if isinstance(other, Field):
        model: type[Model] = other.model
        label = f"{model._meta.label}.{other.name}"
        raise TypeError(
            f"@m2m_changed({model.__name__}.{other.name}): {label} is a "
            f"{type(other).__name__}, not a many-to-many field. Hook its changes with "
            f"@post_save({model.__name__}, changed={other.name!r}), or pass a many-to-many "
            "descriptor (a ManyToManyField of either side, e.g. Post.tags)."
        )
    raise TypeError(
        f"@m2m_changed({field!r}): pass a many-to-many descriptor (Article.tags, or the "
        'reverse side Tag.articles) or an "app_label.Model.field" string.'
    )


def actions_of(where: str, action: str | Iterable[str] | None) -> frozenset[str]:
    """Return the actions ``action=`` names (default: the post_ ones); refuse others."""
    if action is None:
        return POST_ACTIONS
    given = [action] if isinstance(action, str) else list(action)
    if not given:
        raise TypeError(f"@m2m_changed({where}, action=[]): name at least one action.")
    for name in given:
        if name not in ACTIONS:
            raise ValueError(
                f"@m2m_changed({where}, action={name!r}): not one of Django's m2m_changed "
                f"actions. Use one of: {', '.join(ACTIONS)}."
            )
    return frozenset(given)


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
