"""Keyword actions: what a project keyword does when the first word of an inbound message matches it.

One module per action (`reply`, `update_case`, `start_survey`), each a `KeywordAction` (`base`) declaring
its parameters, their checks, its handler and the texts it sends; one line per action in `registry`."""
