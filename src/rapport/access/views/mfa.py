"""S4 — the two-step sign-in screens: enrolment with a QR code, the verification step,
recovery codes, and the user's own security page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.plugins.otp_static.models import StaticToken

from rapport.access import mfa
from rapport.access.forms import TokenForm
from rapport.access.models import ApiToken
from rapport.access.policy import access_context


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        return "/"
    return target


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code, type the code it shows."""
    device = mfa.pending_device(request.user)
    if request.method == "GET" or device is None:
        if device is None or request.GET.get("restart"):
            device = mfa.totp_begin(user=request.user)
        return render(request, "access/mfa_setup.html", {
            "form": TokenForm(), "device": device, "next": _next(request),
            "secret": _spaced(device), "required": access_context(request.user).requires_mfa,
        })
    form = TokenForm(request.POST)
    wait_before = mfa.wait_seconds(request.user)
    codes = mfa.totp_confirm(request=request, device=device, token=form.data.get("token", ""))
    if codes is None:
        form.is_valid()
        message = mfa.refusal_message(wait_before)
        if not wait_before:
            message += " Check the time on your phone and try the newest code."
        form.add_error("token", message)
        return render(request, "access/mfa_setup.html", {
            "form": form, "device": device, "next": _next(request), "secret": _spaced(device),
            "required": access_context(request.user).requires_mfa,
        }, status=400)
    return render(request, "access/mfa_codes.html", {"codes": codes, "next": _next(request), "enrolled": True})


@login_required
@never_cache
@require_GET
def qr_code(request: HttpRequest) -> HttpResponse:
    device = mfa.pending_device(request.user)
    if device is None:
        raise Http404("No enrolment in progress.")
    response = HttpResponse(mfa.qr_svg(device), content_type="image/svg+xml")
    response["Cache-Control"] = "no-store"
    return response


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """The second step after the password: a code from the app or a recovery code."""
    if mfa.mfa_state(request.user) == "ok" and not mfa.has_confirmed_device(request.user):
        return redirect(_next(request))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"]
        wait_before = mfa.wait_seconds(request.user) if mfa.is_authenticator_code(token) else 0
        if mfa.verify_second_factor(request=request, token=form.cleaned_data["token"]):
            return redirect(_next(request))
        form.add_error("token", mfa.refusal_message(wait_before))
    return render(request, "access/mfa_verify.html", {"form": form, "next": _next(request)},
                  status=400 if request.method == "POST" else 200)


@login_required
@never_cache
@require_POST
def recovery_codes(request: HttpRequest) -> HttpResponse:
    if not mfa.has_confirmed_device(request.user):
        messages.error(request, "Set up two-step sign-in first.")
        return redirect("access:account-security")
    codes = mfa.regenerate_recovery_codes(user=request.user)
    return render(request, "access/mfa_codes.html", {"codes": codes, "next": "/", "enrolled": False})


@login_required
@require_GET
def account_security(request: HttpRequest) -> HttpResponse:
    """The signed-in user's own security: role, MFA, recovery codes left, API tokens."""
    ctx = access_context(request.user)
    return render(request, "access/account_security.html", {
        "role_name": ctx.role_name, "requires_mfa": ctx.requires_mfa,
        "has_device": mfa.has_confirmed_device(request.user),
        "codes_left": StaticToken.objects.filter(device__user=request.user).count(),
        "tokens": ApiToken.objects.filter(user=request.user).order_by("-created_at"),
    })


def _spaced(device: object) -> str:
    from base64 import b32encode

    secret = b32encode(device.bin_key).decode()  # type: ignore[attr-defined]
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
