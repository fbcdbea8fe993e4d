"""Date formats that differ from Django's own (FORMAT_MODULE_PATH), and month names.

Italian writes "1 aprile 2026": no leading zero, no capital, no weekday. Django's Italian
formats give "01 Aprile 2026" and "Mercoledì 01 Aprile 2026 14:30". The formats are in
`it/formats.py`; the month names are in the project's catalogues (`months.py`), which come
before Django's (LOCALE_PATHS), so `F` gives "aprile".
"""
