"""Bad input anywhere (API, CLI, importer) raises InputError: a stable code, a sentence, an HTTP status.

The API turns it into {"error": {"code", "message"}} with that status; the CLI prints code and sentence.
"""


class InputError(Exception):
    def __init__(self, code: str, message: str, status: int = 422):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
