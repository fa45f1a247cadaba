from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def demo_mode_off(app_configs, **kwargs):
    """Demo mode opens the demo shop without a session token: never in a deployment."""
    if getattr(settings, "DEMO_MODE", False):
        return [checks.Error("DEMO_MODE is on.", hint="Unset DEMO_MODE in production.", id="loyalnest.E001")]
    return []
