from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The erasers of the apps this one knows (accounts, subscriptions, axes, admin, exports).
        from . import erasers  # noqa: F401
