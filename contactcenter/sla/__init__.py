"""SLA clocks, business calendars and service contracts (issue 5)."""
