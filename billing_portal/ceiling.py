"""The ceiling of bench/pages.py: a logged-in page that does nothing but pass the middleware.

Mounted at /bench/ceiling/ only when BENCH_CEILING_VIEW=true (the benchmark's gunicorn sets it),
so normal deployments and test runs do not have it. It goes through the same middleware as every
page (session, user, account, CSRF, CSP, axes), so a real page's requests per second divided by
this one's is the share left to the page's own work: queries, template, money formatting.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET


@require_GET
@login_required
def ceiling(request):
    # Not a page for people: a fixed marker the benchmark checks, plus who is logged in.
    return HttpResponse(f"ceiling user={request.user.pk}", content_type="text/plain")


urlpatterns = [path("bench/ceiling/", ceiling, name="bench-ceiling")]
