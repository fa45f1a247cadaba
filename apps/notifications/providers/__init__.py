"""One adapter per vendor: a narrow client with explicit timeouts, a base URL from settings and
errors that say whether a retry can help (STYLE "Integrations")."""

from .base import OutboundMessage, ProviderError
from .klaviyo import KlaviyoSender
from .postscript import PostscriptSender
from .slack import SlackSender

SENDERS = {"klaviyo": KlaviyoSender(), "postscript": PostscriptSender(), "slack": SlackSender()}

__all__ = ["SENDERS", "OutboundMessage", "ProviderError"]
