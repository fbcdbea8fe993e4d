"""The deletion confirmation: the owner's password again, and the account's name typed out."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Account, User


class DeleteAccountForm(forms.Form):
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    account_name = forms.CharField(
        label=_("The account's name"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, user: User, account: Account, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.account = account

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("This password is not correct."), code="wrong_password")
        return password

    def clean_account_name(self) -> str:
        name = self.cleaned_data["account_name"].strip()
        # Exactly as written (only surrounding spaces are forgiven): typing it is the confirmation.
        if name != self.account.name.strip():
            raise forms.ValidationError(_("This is not the account's name."), code="wrong_name")
        return name
