"""The answer to a POST whose input cannot be used: a page that says why and that nothing changed."""

from django.shortcuts import render


def bad_request(request, message: str, *, back_url: str):
    """A 400 page with `message` as an alert (docs/rules.md, "Feedback") and a way back to the form."""
    return render(request, "bad_request.html", {"message": message, "back_url": back_url}, status=400)
