"""Shopify webhooks: the verified intake view, the inbox, topic handlers, compliance and
reconciliation. `handlers.HANDLERS` maps every subscribed topic to its handler."""
