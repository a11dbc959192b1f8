from datetime import timedelta

from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "rapport.privacy"
    label = "privacy"
    verbose_name = "Privacy and consent"

    def ready(self) -> None:
        # Import every installed app's datamap module so the data map is complete (C1).
        from importlib import import_module
        from importlib.util import find_spec

        from django.apps import apps

        for config in apps.get_app_configs():
            module = f"{config.name}.datamap"
            if find_spec(module) is not None:
                import_module(module)

        from rapport.access.permissions import register_object_type
        from rapport.core.jobs import register_periodic
        from rapport.core.registry import NavItem, PersonPanel, register_nav, register_person_panel
        from rapport.privacy.views import person_panel_context

        register_object_type("privacy.rightsrequest", "Rights requests", ("create", "read", "update", "execute"))
        register_object_type("privacy.settings", "Privacy settings (suppression, retention, notices)",
                             ("manage",))

        register_nav(NavItem(label="Rights requests", url_name="privacy:request-list", icon="check", order=50))
        register_nav(NavItem(label="Processing record", url_name="privacy:processing-record", icon="post",
                             order=51))
        register_nav(NavItem(label="Suppression", url_name="privacy:suppression", icon="alert", order=52))
        register_nav(NavItem(label="Retention", url_name="privacy:retention", icon="clock", order=53))
        register_nav(NavItem(label="Security notices", url_name="privacy:security-notice", icon="alert", order=54,
                             allowed=_manages_privacy))
        register_person_panel(PersonPanel(key="privacy", template="privacy/person_panel.html",
                                          context=person_panel_context, order=10))
        register_periodic("privacy.retention", timedelta(days=1), "rapport.privacy.tasks.apply_retention_task")


def _manages_privacy(user: object) -> bool:
    from rapport.access.permissions import has_permission

    return has_permission(user, "privacy.settings", "manage")
