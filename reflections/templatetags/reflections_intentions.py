from django import template

from reflections.selectors import intentions_for_user

register = template.Library()


@register.inclusion_tag("reflections/_intentions_checkin.html", takes_context=True)
def my_intentions(context):
    """The viewer's own intentions, for the live room (check-in) without the room's view knowing
    about reflections. Only ever the signed-in person's own."""
    user = context["request"].user
    return {"my_intentions": intentions_for_user(user) if user.is_authenticated else []}
