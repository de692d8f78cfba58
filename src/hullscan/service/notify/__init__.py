"""Outbound notifications: webhook policies, the outbox of events, and the notifier that posts them."""
