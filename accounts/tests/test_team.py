"""The team page: owners invite teammates by email, change roles and remove people; one owner always stays."""

import threading
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.core import mail
from django.db import connection, connections
from django.test import Client

from accounts import services
from accounts.models import Account, Invitation, Membership, User
from billing_portal.lib import clock
from subscriptions.tests.factories import PASSWORD
from subscriptions.tests.pages import customer, messages_of, teammate

from .conftest import link_in_last_email

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "plum-orchard-1987"


def team_state(account) -> dict:
    return {
        "members": sorted(Membership.objects.filter(account=account).values_list("user__email", "role")),
        "invitations": list(
            Invitation.objects.filter(account=account).order_by("pk").values("email", "accepted_at", "revoked_at")
        ),
        "users": User.objects.count(),
    }


def invite(client, email="grace@example.com", role=Membership.MEMBER):
    return client.post("/accounts/team/invite/", {"email": email, "role": role}, follow=True)


@pytest.fixture
def owner_client(client, stripe_fake):
    owner, account = customer(card=False, name="Hopper Computing")
    client.force_login(owner)
    client.owner, client.account = owner, account
    return client


# --- Who sees the team page -----------------------------------------------------------------------------------
def test_owners_reach_the_team_page_from_the_billing_page(owner_client):
    assert 'href="/accounts/team/"' in owner_client.get("/billing/").content.decode()
    html = owner_client.get("/accounts/team/").content.decode()
    assert "Hopper Computing" in html and owner_client.owner.email in html and "(you)" in html


@pytest.mark.parametrize("role", [Membership.BILLING_ADMIN, Membership.MEMBER])
def test_billing_admins_and_members_are_told_only_owners_manage_the_team(client, stripe_fake, role):
    owner, account = customer(card=False)
    client.force_login(teammate(account, role))
    assert 'href="/accounts/team/"' not in client.get("/billing/").content.decode()
    response = client.get("/accounts/team/")
    assert response.status_code == 403
    assert "Only owners manage the team" in response.content.decode() and owner.email in response.content.decode()
    before = team_state(account)
    assert invite(client).status_code == 403
    assert client.post(f"/accounts/team/members/{owner.membership.pk}/remove/").status_code == 403
    assert team_state(account) == before and mail.outbox == []


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    assert client.get("/accounts/team/")["Location"].startswith("/accounts/login/")
    assert client.post("/accounts/team/invite/")["Location"].startswith("/accounts/login/")


# --- Inviting and joining -------------------------------------------------------------------------------------
def test_an_invitee_sets_a_name_and_password_and_joins_with_the_role(owner_client):
    response = invite(owner_client, "Grace@Example.com", Membership.BILLING_ADMIN)
    assert messages_of(response) == ["We emailed an invitation to grace@example.com. It works for 7 days."]
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "grace@example.com",
        Membership.BILLING_ADMIN,
        owner_client.owner,
    )
    assert "grace@example.com" in response.content.decode()  # listed as pending
    email = mail.outbox[-1]
    assert email.to == ["grace@example.com"]
    assert email.subject == "You are invited to join Hopper Computing"
    assert "as billing admin" in email.body

    link = link_in_last_email("invitation")
    visitor = Client()
    page = visitor.get(link).content.decode()
    assert "Join Hopper Computing" in page and 'value="grace@example.com"' in page
    response = visitor.post(link, {"name": "Grace Hopper", "password": GOOD_PASSWORD}, follow=True)
    assert response.redirect_chain == [("/billing/", 302)]
    assert messages_of(response) == ["Welcome to Hopper Computing!"]
    user = User.objects.get(email="grace@example.com")
    assert user.name == "Grace Hopper" and user.check_password(GOOD_PASSWORD) and user.is_email_verified
    assert (user.membership.account, user.membership.role) == (owner_client.account, Membership.BILLING_ADMIN)
    invitation.refresh_from_db()
    assert invitation.accepted_by == user and invitation.accepted_at
    assert Client().login(username="grace@example.com", password=GOOD_PASSWORD)


def test_a_used_link_is_refused_with_a_clear_message(owner_client):
    invite(owner_client)
    link = link_in_last_email("invitation")
    Client().post(link, {"name": "Grace", "password": GOOD_PASSWORD})
    again = Client().post(link, {"name": "Mallory", "password": GOOD_PASSWORD})
    assert again.status_code == 410
    assert "This invitation was already accepted." in again.content.decode()
    assert User.objects.get(email="grace@example.com").name == "Grace"


def test_an_expired_link_is_refused_and_the_page_shows_it_expired(owner_client):
    invite(owner_client)
    link = link_in_last_email("invitation")
    with time_machine.travel(clock.now() + timedelta(days=7, minutes=1)):
        response = Client().post(link, {"name": "Grace", "password": GOOD_PASSWORD})
        assert response.status_code == 410
        assert "This invitation expired." in response.content.decode()
        assert "Expired on" in owner_client.get("/accounts/team/").content.decode()
    assert not User.objects.filter(email="grace@example.com").exists()


def test_the_invitation_days_are_configurable(owner_client, settings):
    settings.ACCOUNTS_INVITE_DAYS = 2
    invite(owner_client)
    invitation = Invitation.objects.get()
    assert invitation.expires_at - invitation.created_at == timedelta(days=2)


def test_a_withdrawn_invitation_no_longer_works(owner_client):
    invite(owner_client)
    link = link_in_last_email("invitation")
    invitation = Invitation.objects.get()
    response = owner_client.post(f"/accounts/team/invitations/{invitation.pk}/revoke/", follow=True)
    assert messages_of(response)[-1] == "The invitation to grace@example.com was withdrawn; its link no longer works."
    assert "No invitations are waiting." in response.content.decode()
    result = Client().post(link, {"name": "Grace", "password": GOOD_PASSWORD})
    assert result.status_code == 410 and "This invitation was withdrawn." in result.content.decode()
    assert not User.objects.filter(email="grace@example.com").exists()


def test_inviting_again_replaces_the_open_invitation(owner_client):
    invite(owner_client, role=Membership.MEMBER)
    first_link = link_in_last_email("invitation")
    invite(owner_client, role=Membership.BILLING_ADMIN)
    second_link = link_in_last_email("invitation")
    assert first_link != second_link
    assert Client().get(first_link).status_code == 410
    Client().post(second_link, {"name": "Grace", "password": GOOD_PASSWORD})
    assert User.objects.get(email="grace@example.com").membership.role == Membership.BILLING_ADMIN


@pytest.mark.parametrize("mangle", [lambda t: t[:-2] + "zz", lambda t: t[:8], lambda t: t + "x"])
def test_a_tampered_invitation_link_is_refused(owner_client, mangle):
    invite(owner_client)
    token = link_in_last_email("invitation").split("/")[-2]
    response = Client().post(f"/accounts/invitation/{mangle(token)}/", {"name": "X", "password": GOOD_PASSWORD})
    assert response.status_code == 400
    assert "This invitation link is not valid" in response.content.decode()
    assert not User.objects.filter(email="grace@example.com").exists()


def test_a_weak_password_keeps_the_invitation_open_and_creates_nothing(owner_client):
    invite(owner_client)
    link = link_in_last_email("invitation")
    response = Client().post(link, {"name": "Grace Hopper", "password": "gracehopper"})
    assert response.status_code == 400
    assert "The password is too similar to the" in response.content.decode()
    assert not User.objects.filter(email="grace@example.com").exists()
    assert Invitation.objects.get().accepted_at is None


def test_an_email_already_in_the_account_cannot_be_invited(owner_client):
    member = teammate(owner_client.account, Membership.MEMBER)
    before = team_state(owner_client.account)
    response = invite(owner_client, member.email.upper())
    assert response.status_code == 400
    assert f"{member.email} is already in your team." in response.content.decode()
    assert team_state(owner_client.account) == before and mail.outbox == []


def test_an_email_with_a_login_in_another_account_is_refused(owner_client):
    other_owner, _other = customer(card=False)
    before = team_state(owner_client.account)
    response = invite(owner_client, other_owner.email)
    assert response.status_code == 400
    assert "already has a login for another account. A login belongs to one account" in response.content.decode()
    assert team_state(owner_client.account) == before and mail.outbox == []


def test_an_address_that_got_a_login_elsewhere_meanwhile_cannot_accept(owner_client):
    invite(owner_client, "late@example.com")
    link = link_in_last_email("invitation")
    elsewhere, _other = customer(card=False)
    User.objects.filter(pk=elsewhere.pk).update(email="late@example.com")
    response = Client().post(link, {"name": "Late", "password": GOOD_PASSWORD})
    assert response.status_code == 409
    assert "already has a login for another account" in response.content.decode()
    assert Membership.objects.filter(account=owner_client.account).count() == 1
    assert Invitation.objects.get().accepted_at is None


@pytest.mark.parametrize("role", [Membership.OWNER, "admin", ""])
def test_an_invitation_is_for_a_billing_admin_or_a_member_only(owner_client, role):
    before = team_state(owner_client.account)
    assert invite(owner_client, role=role).status_code == 400
    assert team_state(owner_client.account) == before


def test_a_logged_in_user_is_asked_to_log_out_before_accepting(owner_client):
    invite(owner_client)
    response = owner_client.get(link_in_last_email("invitation"))
    assert response.status_code == 409
    assert "log out, then open the invitation link again" in response.content.decode()


def test_another_accounts_invitation_cannot_be_withdrawn(owner_client):
    other_owner, other = customer(card=False)
    foreign, _emailed = services.invitation_create(
        account=other, email="x@example.com", role="member", invited_by=other_owner
    )
    assert owner_client.post(f"/accounts/team/invitations/{foreign.pk}/revoke/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


# --- Roles and removal --------------------------------------------------------------------------------------------
def test_an_owner_changes_a_role(owner_client):
    member = teammate(owner_client.account, Membership.MEMBER)
    response = owner_client.post(
        f"/accounts/team/members/{member.membership.pk}/role/", {"role": Membership.BILLING_ADMIN}, follow=True
    )
    assert messages_of(response) == [f"{member.get_full_name()} is now billing admin."]
    member.membership.refresh_from_db()
    assert member.membership.role == Membership.BILLING_ADMIN


def test_the_last_owner_cannot_stop_being_an_owner(owner_client):
    membership = owner_client.owner.membership
    response = owner_client.post(
        f"/accounts/team/members/{membership.pk}/role/", {"role": Membership.MEMBER}, follow=True
    )
    assert messages_of(response) == ["An account needs at least one owner. Make someone else an owner first."]
    membership.refresh_from_db()
    assert membership.role == Membership.OWNER


def test_with_a_second_owner_an_owner_can_step_down(owner_client):
    second = teammate(owner_client.account, Membership.OWNER)
    membership = owner_client.owner.membership
    response = owner_client.post(f"/accounts/team/members/{membership.pk}/role/", {"role": Membership.BILLING_ADMIN})
    assert response["Location"] == "/billing/"
    membership.refresh_from_db()
    assert membership.role == Membership.BILLING_ADMIN
    assert second.membership.role == Membership.OWNER
    assert owner_client.get("/accounts/team/").status_code == 403


def test_removing_someone_takes_them_out_and_switches_their_login_off(owner_client):
    member = teammate(owner_client.account, Membership.BILLING_ADMIN)
    their_client = Client()
    their_client.force_login(member)
    response = owner_client.post(f"/accounts/team/members/{member.membership.pk}/remove/", follow=True)
    assert messages_of(response) == [f"{member.get_full_name()} was removed from your team."]
    assert not Membership.objects.filter(user=member).exists()
    member.refresh_from_db()
    assert not member.is_active
    assert their_client.get("/billing/")["Location"].startswith("/accounts/login/")  # logged out
    assert not Client().login(username=member.email, password=PASSWORD)


def test_a_removed_member_can_be_invited_back(owner_client):
    member = teammate(owner_client.account, Membership.MEMBER)
    services.membership_remove(
        account=owner_client.account, membership_id=member.membership.pk, actor=owner_client.owner
    )
    invite(owner_client, member.email)
    Client().post(link_in_last_email("invitation"), {"name": "Back Again", "password": GOOD_PASSWORD})
    member.refresh_from_db()
    assert member.is_active and member.name == "Back Again"
    assert member.membership.account == owner_client.account


def test_an_owner_cannot_remove_themselves(owner_client):
    teammate(owner_client.account, Membership.OWNER)
    membership = owner_client.owner.membership
    response = owner_client.post(f"/accounts/team/members/{membership.pk}/remove/", follow=True)
    assert messages_of(response) == ["You cannot remove yourself. Ask another owner to do it."]
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_the_service_never_removes_the_last_owner(owner_client):
    operator = User.objects.create_user("ops@example.com", GOOD_PASSWORD, is_staff=True)
    with pytest.raises(services.TeamChangeRefused, match="at least one owner"):
        services.membership_remove(
            account=owner_client.account, membership_id=owner_client.owner.membership.pk, actor=operator
        )


def test_another_accounts_member_cannot_be_changed_or_removed(owner_client):
    other_owner, other = customer(card=False)
    their_member = teammate(other, Membership.MEMBER)
    before = team_state(other)
    pk = their_member.membership.pk
    assert owner_client.post(f"/accounts/team/members/{pk}/role/", {"role": Membership.OWNER}).status_code == 404
    assert owner_client.post(f"/accounts/team/members/{pk}/remove/").status_code == 404
    assert team_state(other) == before


def test_an_unknown_role_is_a_400(owner_client):
    member = teammate(owner_client.account, Membership.MEMBER)
    response = owner_client.post(f"/accounts/team/members/{member.membership.pk}/role/", {"role": "superuser"})
    assert response.status_code == 400
    member.membership.refresh_from_db()
    assert member.membership.role == Membership.MEMBER


def test_team_actions_need_a_post_and_a_csrf_token(owner_client):
    member = teammate(owner_client.account, Membership.MEMBER)
    pk = member.membership.pk
    for url in ["/accounts/team/invite/", f"/accounts/team/members/{pk}/role/", f"/accounts/team/members/{pk}/remove/"]:
        assert owner_client.get(url).status_code == 405
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(owner_client.owner)
    before = team_state(owner_client.account)
    assert csrf_client.post(f"/accounts/team/members/{pk}/remove/").status_code == 403
    assert csrf_client.post("/accounts/team/invite/", {"email": "a@example.com", "role": "member"}).status_code == 403
    assert team_state(owner_client.account) == before


def test_two_owners_demoting_each_other_at_once_leave_one_owner(transactional_db, stripe_fake, uses_postgres):
    """The account row lock makes the second demotion wait and then see the first."""
    first, account = customer(card=False)
    second = teammate(account, Membership.OWNER)
    real_other_owners = services._other_owners
    first_inside = threading.Event()

    def other_owners_slowly(account_, membership):
        count = real_other_owners(account_, membership)
        if threading.current_thread().name == "first":
            first_inside.set()
            _wait_until_another_session_waits_for_a_lock()
        return count

    outcomes = {}

    def demote(name: str, actor, target) -> None:
        try:
            services.membership_change_role(
                account=account, membership_id=target.membership.pk, role=Membership.MEMBER, actor=actor
            )
            outcomes[name] = "demoted"
        except services.TeamChangeRefused:
            outcomes[name] = "refused"
        finally:
            connection.close()

    with mock.patch.object(services, "_other_owners", other_owners_slowly):
        one = threading.Thread(target=demote, name="first", args=("first", first, second))
        one.start()
        assert first_inside.wait(10)
        two = threading.Thread(target=demote, name="second", args=("second", second, first))
        two.start()
        one.join(20)
        two.join(20)
    assert outcomes == {"first": "demoted", "second": "refused"}
    assert list(Membership.objects.filter(account=account, role=Membership.OWNER).values_list("user", flat=True)) == [
        first.pk
    ]


def _wait_until_another_session_waits_for_a_lock(timeout: float = 5.0) -> None:
    """Poll pg_stat_activity (from a separate connection) until some backend waits on a lock."""
    import time

    watcher = connections.create_connection("default")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with watcher.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    return
            time.sleep(0.02)
    finally:
        watcher.close()


def test_owner_and_account_are_never_separated_by_a_removal(owner_client):
    member = teammate(owner_client.account, Membership.MEMBER)
    owner_client.post(f"/accounts/team/members/{member.membership.pk}/remove/")
    assert Account.objects.get(pk=owner_client.account.pk).memberships.filter(role=Membership.OWNER).count() == 1


def test_an_invitation_whose_email_fails_stays_and_can_be_sent_again(owner_client):
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=OSError("mail server down")):
        response = invite(owner_client)
    assert messages_of(response) == [
        "The invitation to grace@example.com is saved, but the email could not be sent. Please invite again."
    ]
    assert mail.outbox == []
    invite(owner_client)
    assert [m.to for m in mail.outbox] == [["grace@example.com"]]
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 1
