from datetime import timedelta

from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "rapport.identity"
    label = "identity"
    verbose_name = "Identity resolution"

    def ready(self) -> None:
        from rapport.core.jobs import register_periodic
        from rapport.core.registry import NavItem, PersonPanel, register_nav, register_person_panel
        from rapport.identity.views import person_panel_context

        register_nav(NavItem(label="Duplicates", url_name="identity:queue", icon="people", order=40,
                             allowed=_reads_people))
        register_person_panel(PersonPanel(key="identity", template="identity/person_panel.html",
                                          context=person_panel_context, order=20))
        # I3: the whole database, nightly; auto-merge only if RAPPORT_AUTO_MERGE_ABOVE is set.
        register_periodic("identity.dedupe", timedelta(days=1), "rapport.identity.tasks.dedupe_task")


def _reads_people(user: object) -> bool:
    from rapport.access.permissions import has_permission

    return has_permission(user, "people.person", "read")
