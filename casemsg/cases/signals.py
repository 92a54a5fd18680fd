"""The case after-change hook. `cases.services` announces every change here, inside its transaction,
and the areas above subscribe (in their AppConfig.ready): the phone registry (contacts), consent, and
later alert re-evaluation. So `cases` imports none of them, and no write path can skip them.

Receivers run in the order their apps are listed in INSTALLED_APPS (contacts before consent): the
registry is in sync before consent looks at it.
"""

from __future__ import annotations

from django.dispatch import Signal

# After cases were created or changed (one call for a whole bulk write), inside the write transaction.
# Keyword arguments: project, cases (every case written, saved, in input order), created (the new ones),
# previous ({pk: properties before the change} for the updated ones), source (who made the change, as the
# consent ledger names it: "worker_form", "import", "api", "page", or "" when the caller records its own).
cases_changed = Signal()

# Just before cases are deleted, inside the delete transaction. Keyword arguments: project, cases.
cases_deleting = Signal()
