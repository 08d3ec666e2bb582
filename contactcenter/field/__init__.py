"""Field service: technician visits dispatched from tickets (issue 13)."""
