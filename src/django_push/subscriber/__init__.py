"""Subscriber: subscribe to topics at WebSub hubs and receive their content."""
