"""The chat: the Health Bot, the WebSocket hub, escalation to people, and the search index
of the knowledge articles the bot (and patients and staff) search."""
