"""The project-settings hook. `projects.services.update_settings` announces a change here, inside its
transaction, and the areas above subscribe (in their AppConfig.ready): scheduling recomputes the schedule
instances of contacts without a time zone of their own when the default time zone changed. So `projects`
imports none of them.
"""

from __future__ import annotations

from django.dispatch import Signal

# After a project's settings changed, inside the write transaction. Keyword arguments: project (saved),
# changed ({setting name: value before the change}, only the settings whose value changed).
settings_changed = Signal()
