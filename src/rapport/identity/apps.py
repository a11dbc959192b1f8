from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "rapport.identity"
    label = "identity"
    verbose_name = "Identity resolution"
