"""Phone and SMS through Twilio: voice webhooks, IVR, queue, softphone tokens, SMS (issue 9)."""
