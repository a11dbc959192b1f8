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
