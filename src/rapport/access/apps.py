from datetime import timedelta

from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "rapport.access"
    label = "access"
    verbose_name = "Access and security"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from rapport.access.encryption import ROTATION_STEPS
        from rapport.access.mfa import remember_devices
        from rapport.access.middleware import mark_active
        from rapport.access.permissions import has_permission
        from rapport.access.services import rotate_attachment_keys
        from rapport.core.jobs import register_periodic
        from rapport.core.registry import NavItem, PersonPanel, register_nav, register_person_panel

        def on_login(sender, request, user, **kwargs):  # type: ignore[no-untyped-def]
            # Start the idle clock and note whether a second factor is due, at sign-in, so
            # ordinary page views do not have to write the session.
            mark_active(request)
            remember_devices(request, user)

        user_logged_in.connect(on_login, weak=False, dispatch_uid="rapport.access.on_login")
        # S2: visibility filters need planner statistics (SQLite never gathers them itself).
        register_periodic("access.planner-statistics", timedelta(hours=6),
                          "rapport.access.tasks.planner_statistics_task")
        if rotate_attachment_keys not in ROTATION_STEPS:
            ROTATION_STEPS.append(rotate_attachment_keys)
        register_nav(NavItem(label="Audit trail", url_name="access:audit-search", icon="clock", order=80,
                             allowed=lambda u: has_permission(u, "access.auditentry", "read")))
        register_nav(NavItem(label="Settings", url_name="access:settings", icon="internal", order=90,
                             allowed=lambda u: has_permission(u, "access.settings", "manage")))
        register_nav(NavItem(label="Security", url_name="access:account-security", icon="person", order=95))
        register_person_panel(PersonPanel(key="access", template="access/panels/person_access.html",
                                          context=_person_access_panel, order=50))


def _person_access_panel(request, person):  # type: ignore[no-untyped-def]
    from rapport.access.selectors import person_access_panel

    return person_access_panel(user=request.user, person=person, request=request)
