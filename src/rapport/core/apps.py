from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "rapport.core"
    label = "core"
    verbose_name = "Rapport core"

    def ready(self) -> None:
        from rapport.core.registry import NavItem, register_nav

        register_nav(NavItem(label="Home", url_name="home", icon="home", order=0))
