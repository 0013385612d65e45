"""Currency conversion for vendors that price outside USD: one rate, one date, for every vendor.

Offers are in USD. The rate is a dated constant (refreshed with the recordings), not a live feed:
GPUBroker has no FX source it can reach from every machine, and a silent live rate would make
prices move when nothing changed at the vendor.
"""

from decimal import Decimal

EUR_USD = Decimal("1.16")  # USD per EUR, rounded ECB euro reference rate
EUR_USD_AS_OF = "2025-10-31"
# USD per unit, from the ECB reference rates of the same day (EUR cross rates), rounded
TO_USD = {"USD": Decimal(1), "EUR": EUR_USD, "GBP": Decimal("1.32"), "INR": Decimal("0.0113"), "CHF": Decimal("1.25")}
