"""The hooks the groups area announces (see docs/architecture.md, Hooks).

- `group_deleting(sender=Group, group=…)`: just before a group is deleted, inside the delete transaction. A
  receiver that still uses the group (an active broadcast, an alert) raises `InputError` (GROUP_IN_USE), and
  nothing is deleted.
- `group_members_changed(sender=Group, group=…)`: a static group's members were added or removed, or a
  dynamic group's conditions changed, inside the write transaction (scheduling re-runs the alerts that use it;
  broadcasts read a group at each occurrence anyway).
"""

from __future__ import annotations

from django.dispatch import Signal

group_deleting = Signal()
group_members_changed = Signal()
