"""Web forms: hosted and embeddable forms that become tickets (issue 10)."""
