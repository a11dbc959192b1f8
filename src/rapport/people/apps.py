from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "rapport.people"
    label = "people"
    verbose_name = "People and organisations"

    def ready(self) -> None:
        from rapport.core.registry import NavItem, register_nav

        register_nav(NavItem(label="People", url_name="people:person-list", icon="people", order=10))
        register_nav(NavItem(label="Organisations", url_name="people:organisation-list",
                             icon="organisation", order=20))
