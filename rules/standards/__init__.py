"""Standards as versioned data, selected by the event's own time.

* :mod:`rules.standards.hj633` — HJ 633-2012 / HJ 633-2026 AQI breakpoint tables.
* :mod:`rules.standards.gb3095` — GB 3095-2012 / GB 3095-2026 ambient limits and data validity.
"""
