"""The admin pages (issue #5): journalists, keys, instance settings, the audit log.

One blueprint under ``/admin``. Its guard turns away every request whose session is not an
admin's with a 403, before any admin view runs; the app-wide hooks have already required a
session and checked CSRF on posts. A test walks the URL map and tries every admin route as
a journalist, so a route added here is covered the day it lands.
"""

from __future__ import annotations

from flask import Blueprint, Flask
from werkzeug.exceptions import Forbidden

from tipbox.journalist_auth import ROLE_ADMIN

from ..readers import me
from .audit_views import register_audit_views
from .journalists_views import register_journalists_views
from .keys_views import register_keys_views
from .settings_views import register_settings_views

URL_PREFIX = "/admin"


def _admins_only() -> None:
    if me().role != ROLE_ADMIN:
        raise Forbidden()


def register_admin(app: Flask) -> None:
    """Add the admin blueprint, guarded, to ``app``."""
    admin = Blueprint("admin", __name__, url_prefix=URL_PREFIX)
    admin.before_request(_admins_only)
    register_audit_views(admin)
    register_journalists_views(admin)
    register_keys_views(admin)
    register_settings_views(admin)
    app.register_blueprint(admin)
