from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import reauth, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("confirm-password/", reauth.reauthenticate, name="reauthenticate"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            success_url=reverse_lazy("accounts:password_reset_done"),
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(success_url=reverse_lazy("accounts:password_reset_complete")),
        name="password_reset_confirm",
    ),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("signup/", views.signup, name="signup"),
    path("signup/pay/<int:price_id>/", views.signup_pay, name="signup-pay"),
    path("verify/resend/", views.verify_resend, name="verify-resend"),
    path("verify/<str:token>/", views.verify_email, name="verify-email"),
    path("team/", views.team, name="team"),
    path("team/invite/", views.team_invite, name="team-invite"),
    path("team/members/<int:membership_id>/role/", views.team_role, name="team-role"),
    path("team/members/<int:membership_id>/remove/", views.team_remove, name="team-remove"),
    path("team/invitations/<int:invitation_id>/revoke/", views.team_revoke, name="team-revoke"),
    path("invitation/<str:token>/", views.invitation_accept, name="invitation"),
    path("email-language/", views.email_language, name="email-language"),
]
