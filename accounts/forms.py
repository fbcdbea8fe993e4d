"""Forms of signup and the team page: parse and validate input, nothing else."""

from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html, validate_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from . import selectors
from .models import Invitation, Membership, User


def _check_password(form: forms.Form, password: str | None, **user_fields) -> None:
    """Django's password validators, comparing with the person's own email and name."""
    if not password:
        return
    try:
        validate_password(password, user=User(**user_fields))
    except ValidationError as error:
        form.add_error("password", error)


class SignupForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254)
    name = forms.CharField(label=_("Your name"), max_length=150, required=False)
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )
    account_name = forms.CharField(
        label=_("Company or account name"),
        max_length=200,
        help_text=_("Shown on your invoices. You can use your own name."),
    )
    # The price the visitor picked on the pricing page; checked again here (amounts are never posted).
    price = forms.IntegerField(widget=forms.HiddenInput)

    def clean_email(self):
        return User.objects.normalize_email(self.cleaned_data["email"]).strip().lower()

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def clean_account_name(self):
        name = self.cleaned_data["account_name"].strip()
        if not name:
            raise ValidationError(_("Enter a name for your account."))
        return name

    def clean_price(self):
        price = selectors.price_for_signup(pk=self.cleaned_data["price"])
        if price is None:
            raise ValidationError(_("This plan is not available. Please choose a plan on the pricing page."))
        return price

    def clean(self):
        cleaned = super().clean()
        _check_password(self, cleaned.get("password"), email=cleaned.get("email") or "", name=cleaned.get("name") or "")
        return cleaned


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=Invitation.ROLE_CHOICES, initial=Membership.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.ROLE_CHOICES)


class AcceptInvitationForm(forms.Form):
    name = forms.CharField(label=_("Your name"), max_length=150)
    password = forms.CharField(
        label=_("Choose a password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(_("Enter your name."))
        return name

    def clean(self):
        cleaned = super().clean()
        _check_password(self, cleaned.get("password"), email=self.email, name=cleaned.get("name") or "")
        return cleaned
