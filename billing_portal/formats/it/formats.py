# Italian dates as Italian is written (see billing_portal/formats/__init__.py).
DATE_FORMAT = "j F Y"  # 1 aprile 2026
DATETIME_FORMAT = "j F Y, H:i"  # 1 aprile 2026, 14:30
YEAR_MONTH_FORMAT = "F Y"  # aprile 2026
MONTH_DAY_FORMAT = "j F"  # 1 aprile
