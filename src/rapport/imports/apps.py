from datetime import timedelta

from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "rapport.imports"
    label = "imports"
    verbose_name = "Import and export"

    def ready(self) -> None:
        from rapport.core.jobs import register_periodic
        from rapport.core.registry import NavItem, register_nav

        register_nav(NavItem(label="Import", url_name="imports:index", icon="plus", order=60))
        register_nav(NavItem(label="Export", url_name="imports:export", icon="post", order=61))
        register_periodic("imports-resume-stalled", timedelta(minutes=1),
                          "rapport.imports.tasks.resume_stalled_imports")
        register_periodic("imports-purge-expired", timedelta(hours=6),
                          "rapport.imports.tasks.purge_expired_imports")
