"""Every translation of a project in one file for its translators: the texts casemsg sends (the project's
own, casemsg.consent.texts), its keywords' replies, its broadcasts' and alerts' contents and its surveys'
labels — exported as one CSV or .xlsx (`services.export_csv`, `services.export_xlsx`), filled in, and
imported back (`services.read`, then `services.preview` and `services.apply`: every row checked, with
row-numbered problems, all or nothing).

`rows` knows each kind of row: how to list it and how to write a changed row back through its area's
services (the same checks as the API's). See docs/web-config.md, "Texts and translations"."""
