"""The data export: its contents, the job and its progress, the link, and who may use it."""

import csv
import io
import json
import re
import zipfile
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client

from accounts.models import Membership
from billing_portal.lib import clock
from billing_portal.lib.money import format_money
from privacy import selectors, services, tasks
from privacy.export import export_write
from privacy.models import ExportJob
from subscriptions.models import SubscriptionEvent
from subscriptions.tests.factories import MembershipFactory, owner_with_account
from subscriptions.tests.test_jobs import wait_for

pytestmark = pytest.mark.django_db


def build(job: ExportJob, **kwargs) -> ExportJob:
    """Run the export task's body synchronously, as the worker would."""
    return services.export_build(job_id=job.pk, **kwargs)


def read_zip(job: ExportJob) -> zipfile.ZipFile:
    return zipfile.ZipFile(job.path)


def read_csv(archive: zipfile.ZipFile, name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))


def test_the_export_holds_the_account_its_members_its_history_and_every_invoice(known_account):
    k = known_account
    job = build(services.export_request(account=k.account, actor=k.owner))
    assert (job.status, job.progress) == (ExportJob.READY, 100)
    archive = read_zip(job)
    names = set(archive.namelist())
    assert {
        "README.txt",
        "account.json",
        "members.json",
        "subscriptions.csv",
        "events.csv",
        "invoices.csv",
        "invoice_lines.csv",
        "payments.csv",
        "credit.csv",
        "cancellations.csv",
    } <= names
    assert [row["reason_text"] for row in read_csv(archive, "cancellations.csv")] == [
        "our oven broke and so did the budget"
    ]

    account = json.loads(archive.read("account.json"))
    assert (account["name"], account["billing_email"]) == ("Verwijder Bakkerij", "boekhouding@verwijder.example")
    assert account["card"]["last4"] == "4242"
    members = json.loads(archive.read("members.json"))
    assert sorted((m["name"], m["email"], m["role"]) for m in members) == [
        ("Bram Beheer", "bram.beheer@example.com", "billing_admin"),
        ("Mila Medewerker", "mila.medewerker@example.com", "member"),
        ("Zoë Verwijder", "zoe.verwijder@example.com", "owner"),
    ]

    # Every invoice, with amounts in minor units equal to the database and a formatted column.
    rows = read_csv(archive, "invoices.csv")
    assert [row["number"] for row in rows] == [invoice.number for invoice in k.invoices]
    for row, invoice in zip(rows, k.invoices, strict=True):
        assert int(row["amount_due_minor"]) == invoice.amount_due_minor == 1999
        assert int(row["subtotal_minor"]) == invoice.subtotal_minor
        assert row["amount_due"] == format_money(1999, "eur", "nl") == "€\xa019,99"  # Dutch style
        assert row["status"] == "paid"
        html = archive.read(row["file"]).decode("utf-8")
        assert f"Factuur {invoice.number}" in html or f"Invoice {invoice.number}" in html
        assert "€\xa019,99" in html
        assert "Verwijder Bakkerij" in html
    assert len([name for name in names if name.startswith("invoices/")]) == 3

    lines = read_csv(archive, "invoice_lines.csv")
    assert sum(int(line["amount_minor"]) for line in lines) == sum(i.subtotal_minor for i in k.invoices)
    payments = read_csv(archive, "payments.csv")
    assert [(p["status"], int(p["amount_minor"])) for p in payments] == [("succeeded", 1999)] * 3

    subscriptions = read_csv(archive, "subscriptions.csv")
    assert [(s["status"], int(s["amount_minor"])) for s in subscriptions] == [("active", 1999)]
    events = read_csv(archive, "events.csv")
    assert len(events) == SubscriptionEvent.objects.filter(subscription=k.subscription).count()
    assert "Honestly too expensive for our bakery" in {event["reason"] for event in events}
    # The customer's own people are named; nobody else is.
    assert {event["actor"] for event in events} <= {"zoe.verwijder@example.com", ""}


def test_asking_again_while_an_export_is_prepared_returns_the_same_job_queued_once(
    django_capture_on_commit_callbacks,
):
    owner, account = owner_with_account()
    with django_capture_on_commit_callbacks() as callbacks:
        first = services.export_request(account=account, actor=owner)
        second = services.export_request(account=account, actor=owner)
    assert first == second
    assert ExportJob.objects.filter(account=account).count() == 1
    assert len(callbacks) == 1  # build_export.delay_on_commit, once


def test_an_export_whose_worker_vanished_does_not_block_a_new_one():
    owner, account = owner_with_account()
    now = clock.now()
    lost = services.export_request(account=account, actor=owner, now=now - timedelta(hours=1))
    fresh = services.export_request(account=account, actor=owner, now=now)
    lost.refresh_from_db()
    assert lost.status == ExportJob.FAILED
    assert fresh.pk != lost.pk and fresh.status == ExportJob.PENDING


def test_a_job_is_built_once_even_if_the_task_runs_twice():
    owner, account = owner_with_account()
    job = services.export_request(account=account, actor=owner)
    assert build(job).status == ExportJob.READY
    assert build(job) is None
    assert len(mail.outbox) == 1


def test_the_writer_reports_every_step_one_per_invoice(known_account, tmp_path):
    steps = []
    export_write(
        account=known_account.account,
        path=tmp_path / "x.zip",
        now=clock.now(),
        progress=lambda done, total: steps.append((done, total)),
    )
    total = 10 + len(known_account.invoices)
    assert steps == [(done, total) for done in range(1, total + 1)]


def test_progress_is_saved_on_the_job_while_it_is_built(monkeypatch):
    owner, account = owner_with_account()
    job = services.export_request(account=account, actor=owner)
    seen = []

    def slow_writer(*, account, path, now, progress):
        for done in (1, 2, 3):
            progress(done, 4)
            seen.append(ExportJob.objects.values_list("status", "progress").get(pk=job.pk))
        path.write_bytes(b"PK")

    monkeypatch.setattr(services, "export_write", slow_writer)
    job = build(job)
    assert seen == [("running", 25), ("running", 50), ("running", 75)]
    assert (job.status, job.progress) == (ExportJob.READY, 100)


def test_an_export_finished_after_its_account_was_erased_leaves_no_file(monkeypatch, export_dir):
    owner, account = owner_with_account()
    job = services.export_request(account=account, actor=owner)

    def erased_meanwhile(*, account, path, now, progress):
        path.write_bytes(b"PK")
        ExportJob.objects.filter(pk=job.pk).delete()  # what the "privacy" eraser does

    monkeypatch.setattr(services, "export_write", erased_meanwhile)
    assert build(job) is None
    assert list(export_dir.iterdir()) == []
    assert mail.outbox == []


def test_a_failing_export_is_marked_failed_and_leaves_no_file(monkeypatch, export_dir):
    owner, account = owner_with_account()
    job = services.export_request(account=account, actor=owner)

    def broken(**kwargs):
        kwargs["path"].write_bytes(b"half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(services, "export_write", broken)
    job = build(job)
    assert job.status == ExportJob.FAILED
    assert list(export_dir.iterdir()) == []
    assert mail.outbox == []


def test_the_ready_email_links_to_a_download_that_works_for_the_owner(client):
    owner, account = owner_with_account(name="Mailed Ltd")
    job = build(services.export_request(account=account, actor=owner))
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [owner.email]
    assert "Mailed Ltd" in message.subject
    link = re.search(r"http://\S+/account/export/download/\S+/", message.body).group(0)
    path = link.split("8000", 1)[1]
    client.force_login(owner)
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    assert response["Cache-Control"] == "private, no-store"
    content = b"".join(response.streaming_content)
    assert zipfile.ZipFile(io.BytesIO(content)).read("account.json")
    assert job.path.read_bytes() == content


def test_an_expired_link_says_so_clearly_and_the_file_is_purged(client, export_dir):
    owner, account = owner_with_account()
    job = build(services.export_request(account=account, actor=owner))
    path = f"/account/export/download/{selectors.export_download_token(job=job)}/"
    client.force_login(owner)
    assert client.get(path).status_code == 200
    with time_machine.travel(clock.now() + timedelta(days=7, minutes=1)):
        response = client.get(path)
        assert response.status_code == 410
        page = response.content.decode()
        assert "This download link has expired" in page
        assert "Start a new export" in page
        assert services.exports_purge_expired() == 1
    job.refresh_from_db()
    assert (job.status, job.file_name) == (ExportJob.EXPIRED, "")
    assert list(export_dir.iterdir()) == []
    # Reused after expiry, even when the signature alone would still pass: the same message.
    with time_machine.travel(clock.now() + timedelta(days=1)):
        fresh_token = selectors.export_download_token(job=job)
    response = client.get(f"/account/export/download/{fresh_token}/")
    assert response.status_code == 410
    assert "This download link has expired" in response.content.decode()


def test_a_tampered_link_or_another_accounts_link_finds_nothing(client):
    owner, account = owner_with_account()
    other_owner, other = owner_with_account()
    job = build(services.export_request(account=other, actor=other_owner))
    token = selectors.export_download_token(job=job)
    client.force_login(owner)
    response = client.get(f"/account/export/download/{token}/")
    assert response.status_code == 404
    assert "not valid" in response.content.decode()
    tampered = token.replace(f"{job.pk}:", f"{job.pk + 1}:", 1)
    client.force_login(other_owner)
    assert client.get(f"/account/export/download/{tampered}/").status_code == 404
    assert client.get(f"/account/export/download/{token}/").status_code == 200


@pytest.mark.parametrize("role", [Membership.BILLING_ADMIN, Membership.MEMBER])
def test_only_owners_export_and_download_others_are_told_who_can(client, role):
    owner, account = owner_with_account()
    owner.name = "Olga Owner"
    owner.save()
    job = build(services.export_request(account=account, actor=owner))
    other = MembershipFactory(account=account, role=role).user
    client.force_login(other)
    for response in (
        client.post("/account/export/"),
        client.get(f"/account/export/{job.pk}/"),
        client.get(f"/account/export/download/{selectors.export_download_token(job=job)}/"),
    ):
        assert response.status_code == 403
        assert "Olga Owner" in response.content.decode()
    assert client.get(f"/account/export/{job.pk}/status/").status_code == 403
    assert ExportJob.objects.filter(account=account).count() == 1
    with pytest.raises(services.OwnerRequired):
        services.export_request(account=account, actor=other)


def test_starting_an_export_needs_a_post_with_a_csrf_token():
    owner, account = owner_with_account()
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get("/account/export/").status_code == 405
    assert client.post("/account/export/").status_code == 403
    assert not ExportJob.objects.exists()


def test_the_progress_page_and_its_json_show_the_state_of_the_job(client):
    owner, account = owner_with_account()
    client.force_login(owner)
    response = client.post("/account/export/")
    job = ExportJob.objects.get(account=account)
    assert response["Location"] == f"/account/export/{job.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert f'data-export-status-url="/account/export/{job.pk}/status/"' in page
    assert "js/export-progress.js" in page
    assert '<meta http-equiv="refresh"' in page  # inside <noscript>: reloads without JavaScript
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.RUNNING, progress=40)
    status = client.get(f"/account/export/{job.pk}/status/").json()
    assert status == {"status": "running", "progress": 40, "done": False, "label": "Preparing your export: 40%"}
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.PENDING)
    build(job)
    assert client.get(f"/account/export/{job.pk}/status/").json()["done"] is True
    page = client.get(f"/account/export/{job.pk}/").content.decode()
    assert "Download the ZIP file" in page
    assert "export-progress.js" not in page and "refresh" not in page.split("<body", 1)[0]


def test_another_accounts_job_is_not_found(client):
    owner, account = owner_with_account()
    other_owner, other = owner_with_account()
    job = services.export_request(account=other, actor=other_owner)
    client.force_login(owner)
    assert client.get(f"/account/export/{job.pk}/").status_code == 404
    assert client.get(f"/account/export/{job.pk}/status/").status_code == 404


@pytest.fixture
def worker_export_dir(export_dir, monkeypatch):
    """Workers started after this fixture write exports to this test's folder (set up before them)."""
    monkeypatch.setenv("PRIVACY_EXPORT_DIR", str(export_dir))
    return export_dir


@pytest.mark.celery
def test_a_real_celery_worker_builds_the_export_queued_by_the_page(
    worker_export_dir, celery_worker_process, stripe_fake, monkeypatch, client
):
    from billing_portal.celery import app

    # The page queues with delay_on_commit to the default queue: this test's worker's queue.
    monkeypatch.setitem(app.conf, "task_default_queue", celery_worker_process.queue)
    owner, account = owner_with_account(name="Worker Bakery")
    worker = celery_worker_process()
    client.force_login(owner)
    client.post("/account/export/")
    job = ExportJob.objects.get(account=account)
    try:
        # Generous: on a loaded machine a worker can take long to start; a pass takes seconds.
        wait_for(
            lambda: ExportJob.objects.filter(pk=job.pk, status=ExportJob.READY).exists(),
            timeout=120,
            what="the worker to build the export",
        )
    except AssertionError:
        worker.terminate()
        job.refresh_from_db()
        print(f"job {job.pk}: {job.status} {job.progress}% {job.error}")
        print(celery_worker_process.log()[-4000:])
        raise
    job.refresh_from_db()
    assert job.path.parent == worker_export_dir
    assert json.loads(read_zip(job).read("account.json"))["name"] == "Worker Bakery"
    assert client.get(f"/account/export/download/{selectors.export_download_token(job=job)}/").status_code == 200


def test_the_build_task_is_a_thin_wrapper_and_skips_a_claimed_job():
    owner, account = owner_with_account()
    job = services.export_request(account=account, actor=owner)
    assert tasks.build_export(job.pk) == ExportJob.READY
    assert tasks.build_export(job.pk) == "skipped"
