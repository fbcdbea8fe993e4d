"""The month names of Django's `F` date format, in the project's catalogues.

Never imported: listed so that `make messages` puts them in the catalogues, where they override
Django's (the Italian ones are lower case, as Italian writes them).
"""

from django.utils.translation import gettext_noop

MONTHS = [
    gettext_noop("January"),
    gettext_noop("February"),
    gettext_noop("March"),
    gettext_noop("April"),
    gettext_noop("May"),
    gettext_noop("June"),
    gettext_noop("July"),
    gettext_noop("August"),
    gettext_noop("September"),
    gettext_noop("October"),
    gettext_noop("November"),
    gettext_noop("December"),
]
