"""Small input checks the portal's forms share."""

from __future__ import annotations

import re

# a plausible email address: something@domain.tld, no spaces (the confirmation mail proves it)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
