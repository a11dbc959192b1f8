"""S4 — two-step sign-in with TOTP apps and single-use recovery codes (django-otp).

A role may require a second factor (``Role.requires_mfa``); a user who enrolled one is asked
for it at every sign-in whatever their role. ``mfa_state`` tells the middleware what a
signed-in session still owes: nothing, enrolment, or the verification step.
"""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from django.db import transaction
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from rapport.access.policy import access_context

SESSION_NO_DEVICE = "rapport_mfa_none"


def mfa_state(user: Any, session: Any = None) -> str:
    """"ok", "enrol" (role requires MFA, no device yet) or "verify" (device, not yet used).

    That a user has no device is remembered in their session, so users without MFA pay
    no query per request; enrolling sets it again.
    """
    verified = getattr(user, "is_verified", None)
    if verified is not None and verified():
        return "ok"
    known_none = session is not None and session.get(SESSION_NO_DEVICE) == str(user.pk)
    if not known_none:
        if has_confirmed_device(user):
            return "verify"
        if session is not None:
            session[SESSION_NO_DEVICE] = str(user.pk)
    if access_context(user).requires_mfa:
        return "enrol"
    return "ok"


def remember_devices(request: Any, user: Any) -> None:
    """At sign-in: remember in the session that the user has no second factor (if so)."""
    session = getattr(request, "session", None)
    if session is not None and not has_confirmed_device(user):
        session[SESSION_NO_DEVICE] = str(user.pk)


def has_confirmed_device(user: Any) -> bool:
    cached = getattr(user, "_rapport_has_device", None)
    if cached is None:
        cached = user_has_device(user, confirmed=True)
        user._rapport_has_device = cached
    return cached


def totp_begin(*, user: Any) -> TOTPDevice:
    """Start enrolment: a fresh unconfirmed TOTP device (earlier unconfirmed ones are dropped)."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def pending_device(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()


def totp_confirm(*, request: Any, device: TOTPDevice, token: str) -> list[str] | None:
    """Confirm enrolment with a code from the app; returns new recovery codes, or None if wrong."""
    from rapport.access.audit import record_event

    user = request.user
    if device.user_id != user.pk or device.confirmed or not device.verify_token(_digits(token)):
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = regenerate_recovery_codes(user=user)
        record_event(actor=user, action="mfa_enrolled", object_type="access.user", object_id=user.pk,
                     request=request)
    otp_login(request, device)
    user._rapport_has_device = True
    request.session.pop(SESSION_NO_DEVICE, None)
    return codes


def regenerate_recovery_codes(*, user: Any) -> list[str]:
    """Replace the user's recovery codes; each works once. Shown to the user once."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Recovery codes",
                                                   defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(getattr(settings, "RAPPORT_RECOVERY_CODES", 10))]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def verify_second_factor(*, request: Any, token: str) -> bool:
    """The sign-in step: a TOTP code or a recovery code (used up) marks the session verified."""
    from rapport.access.audit import record_event

    user = request.user
    text = _normalised(token)
    device = _matching_device(user, text)
    record_event(actor=user, action="mfa_verified" if device else "mfa_failed", object_type="access.user",
                 object_id=user.pk, request=request,
                 detail={"device": type(device).__name__} if device else None)
    if device is None:
        return False
    otp_login(request, device)
    return True


def mfa_reset(*, actor: Any, user: Any, request: Any = None) -> None:
    """An administrator removes a user's devices (lost phone); they enrol again at next sign-in."""
    from rapport.access.audit import record_event

    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        record_event(actor=actor, action="mfa_reset", object_type="access.user", object_id=user.pk,
                     request=request)


def wait_seconds(user: Any) -> int:
    """Seconds until the user's authenticator codes are accepted again (0: now).

    django-otp refuses every code for a while after a wrong one (1 s, doubling with each
    failure); the screens say so instead of calling a right code wrong.
    """
    from django.utils import timezone

    longest = 0
    for device in TOTPDevice.objects.filter(user=user):
        allowed, info = device.verify_is_allowed()
        until = (info or {}).get("locked_until") if not allowed else None
        if until is not None:
            longest = max(longest, int((until - timezone.now()).total_seconds()) + 1)
    return longest


def refusal_message(wait_before: int) -> str:
    """What to say when a code was refused; ``wait_before`` is ``wait_seconds`` before trying."""
    if wait_before:
        return (f"Codes are paused after a wrong one: wait {wait_before} second{'s' if wait_before != 1 else ''} "
                "and try again.")
    return "That code is not right."


def qr_svg(device: TOTPDevice) -> bytes:
    """The enrolment QR code as an SVG document (served as an image: no inline markup)."""
    import qrcode
    from qrcode.image.svg import SvgPathImage

    image = qrcode.make(device.config_url, image_factory=SvgPathImage, box_size=12, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def is_authenticator_code(token: str) -> bool:
    """A six-digit code from the authenticator app (anything else is tried as a recovery code)."""
    text = _normalised(token)
    return text.isdigit() and len(text) == 6


def _normalised(token: str) -> str:
    return token.strip().replace(" ", "").lower()


def _matching_device(user: Any, text: str) -> Any:
    """The device whose code this is: authenticator codes go to TOTP devices only and recovery
    codes to static devices only, so a recovery code never counts as a wrong authenticator code
    (which would pause the authenticator, django-otp's throttling)."""
    model = TOTPDevice if is_authenticator_code(text) else StaticDevice
    for device in model.objects.filter(user=user, confirmed=True):
        if device.verify_token(text):
            return device
    return None


def _digits(token: str) -> str:
    return "".join(ch for ch in token if ch.isdigit())
