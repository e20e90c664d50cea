from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.forms import EmailAuthenticationForm, ProfileForm
from accounts.models import time_zone_names


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


def locked_out(request: HttpRequest, credentials=None, *args, **kwargs) -> HttpResponse:
    """django-axes lockout: the same page and message as any failed sign-in, so it reveals nothing."""
    form = EmailAuthenticationForm(request, data=request.POST or None)
    form.is_valid()  # populates the field values for redisplay; the result is not trusted
    form.errors.clear()
    form.add_error(None, EmailAuthenticationForm.error_messages["invalid_login"])
    return render(request, "accounts/login.html", {"form": form}, status=429)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Your profile and preferences are saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form, "time_zones": sorted(time_zone_names())})
