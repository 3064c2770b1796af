"""Notification channels: the only I/O in ``alerts`` besides the outbox store.

One module per channel (``webhook``, ``chat``, ``email``), the shared contract in ``base`` and
the delivery loop in ``dispatcher``. See docs/notifications.md.
"""
