from django import template

from reflections.text import render_text

register = template.Library()


@register.filter
def safe_text(value: str):
    """Render a member's plain text as paragraphs and links, sanitised."""
    return render_text(value)
