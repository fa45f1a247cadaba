"""Local development: `make run`. DEBUG on; demo mode lets the dashboard open without Shopify."""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("DEBUG", True)
DEMO_MODE = env_bool("DEMO_MODE", True)
