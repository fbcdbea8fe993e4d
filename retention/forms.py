"""Forms of the cancellation flow: the reason (step 1) and a 1:1 session request (an offer)."""

from datetime import datetime, timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Reason

# How far ahead a customer may propose a session.
SESSION_MAX_DAYS_AHEAD = 90


class ReasonForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Why are you leaving?"),
        choices=Reason.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose a reason, or skip this question.")},
    )
    reason_text = forms.CharField(
        label=_("Anything you want to tell us? (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, skip: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        # "Skip, continue to cancel" must work without an answer.
        self.fields["reason"].required = not skip


def _moment_field(label, required: bool) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class SessionForm(forms.Form):
    """Up to three moments for the session (in the account's timezone) and a note.

    The view parses it with the account's timezone active, so the times mean what the customer
    sees on the page.
    """

    proposed_1 = _moment_field(_("First choice"), required=True)
    proposed_2 = _moment_field(_("Second choice (optional)"), required=False)
    proposed_3 = _moment_field(_("Third choice (optional)"), required=False)
    note = forms.CharField(
        label=_("What would you like to talk about? (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, now: datetime, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now

    def clean(self):
        cleaned = super().clean()
        latest = self.now + timedelta(days=SESSION_MAX_DAYS_AHEAD)
        for name in ("proposed_1", "proposed_2", "proposed_3"):
            moment = cleaned.get(name)
            if moment is None:
                continue
            if moment <= self.now:
                self.add_error(name, _("Choose a moment in the future."))
            elif moment > latest:
                self.add_error(name, _("Choose a moment within the next 90 days."))
        return cleaned

    @property
    def proposed_times(self) -> list[datetime]:
        moments = [self.cleaned_data.get(name) for name in ("proposed_1", "proposed_2", "proposed_3")]
        return sorted(set(moment for moment in moments if moment))
