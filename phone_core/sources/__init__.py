"""Sources of phone numbers, all behind the one ``Source`` protocol (see base.py)."""
