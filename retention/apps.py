from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RetentionConfig(AppConfig):
    name = "retention"
    verbose_name = _("Retention")

    def ready(self) -> None:
        from privacy import erasure

        from .models import CancellationFlow, SessionRequest

        @erasure.register("retention")
        def erase_cancellation_answers(erased: erasure.Erasure) -> None:
            """The customers' own words and contact details in cancellation flows and session requests."""
            CancellationFlow.objects.filter(account=erased.account).update(reason_text="")
            SessionRequest.objects.filter(account=erased.account).update(
                contact_email=erased.pseudonym_email, note="", operator_note="", proposed_times=[]
            )
