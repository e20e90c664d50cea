"""`{% form_fields form %}`: a form's fields through _form_fields.html, with labels, help and errors.

Django renders each field through three templates (label, widget, attributes): about 0.3 ms a
field. A blank form whose markup depends on nothing but its initial values says so with
`static_markup = True`, and its markup is kept per class, initial values and id prefix: the
thread page's two blank forms cost about 0.8 ms of it otherwise. Anything else (bound forms,
forms with choices from the database or the person) is rendered each time.
"""

from functools import lru_cache

from django import forms, template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def form_fields(form: forms.BaseForm) -> SafeString:
    if getattr(form, "static_markup", False) and not form.is_bound:
        return _static(type(form), tuple(sorted(form.initial.items())), form.prefix, form.auto_id)
    return render_to_string("_form_fields.html", {"form": form})


@lru_cache(maxsize=256)
def _static(form_class: type, initial: tuple, prefix: str | None, auto_id) -> SafeString:
    form = form_class(initial=dict(initial), prefix=prefix, auto_id=auto_id)
    return render_to_string("_form_fields.html", {"form": form})
