"""`{% form_fields %}` keeps the markup of blank static forms only (circles/templatetags/form_fields.py)."""

from django import forms
from django.template import engines
from django.template.loader import render_to_string

from circles.templatetags import form_fields as tag
from reflections.forms import ReplyForm, TakeawayForm

TEMPLATE = engines["django"].from_string("{% load form_fields %}{% form_fields form %}")


def _render(form) -> str:
    return TEMPLATE.render({"form": form})


def _included(form) -> str:
    return render_to_string("_form_fields.html", {"form": form})


def test_a_blank_static_form_is_rendered_once_and_reads_as_the_include_does():
    tag._static.cache_clear()
    form = TakeawayForm(initial={"takeaway": "Rest before the late shift <b>first</b>."})
    first = _render(form)
    assert first == _included(form)
    assert "Rest before the late shift &lt;b&gt;first&lt;/b&gt;." in first
    assert _render(TakeawayForm(initial={"takeaway": "Rest before the late shift <b>first</b>."})) == first
    assert tag._static.cache_info().hits == 1

    other = _render(TakeawayForm(initial={"takeaway": "Something else"}))
    assert "Something else" in other and "late shift" not in other
    assert tag._static.cache_info().misses == 2


def test_a_bound_form_shows_its_own_errors_and_text():
    tag._static.cache_clear()
    _render(ReplyForm())
    refused = ReplyForm({"body": ""})
    assert not refused.is_valid()
    markup = _render(refused)
    assert markup == _included(refused)
    assert 'class="errorlist"' in markup
    assert tag._static.cache_info().currsize == 1  # the bound form was not kept


class ChangingChoicesForm(forms.Form):
    colour = forms.ChoiceField()

    def __init__(self, *args, colours=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["colour"].choices = [(colour, colour) for colour in colours]


def test_a_form_not_marked_static_is_rendered_every_time():
    assert "teal" in _render(ChangingChoicesForm(colours=["teal"]))
    later = _render(ChangingChoicesForm(colours=["amber"]))
    assert "amber" in later and "teal" not in later
