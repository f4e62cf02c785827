"""Alerts that reach the nurse wherever she is (issue #15): a durable subscriber of the
event log that routes alerts through escalation chains to webhooks, apprise URLs and web
push, keeping a receipt per alert and recipient."""
