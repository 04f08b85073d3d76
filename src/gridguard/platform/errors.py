"""The platform's exception tree; the API maps each to one HTTP status (api/main.py).

PlatformError                 base; ``str(exc)`` is the readable ``detail``
├── NotFoundError             404: no such device, command, user or token
├── ConflictError             409: the name or uid is taken
├── UnauthorizedError         401: no valid token, or wrong name/password
├── ForbiddenError            403: the role does not allow it
├── TooManyAttemptsError      429: login rate limit (``retry_after_s``)
├── InvalidRequestError       422: a body the platform refuses before sending anything
└── CommandError              a command the EMS did not accept (``mid`` names it)
    ├── CommandRejectedError  422: the EMS answered 400 (``msg`` verbatim)
    ├── CommandFailedError    502: the EMS answered 500
    ├── CommandTimedOutError  504: no answer after every retry
    └── BrokerUnavailableError 503: the command could not be published
"""

from __future__ import annotations


class PlatformError(Exception):
    status_code = 500


class NotFoundError(PlatformError):
    status_code = 404


class ConflictError(PlatformError):
    status_code = 409


class UnauthorizedError(PlatformError):
    status_code = 401


class ForbiddenError(PlatformError):
    status_code = 403


class TooManyAttemptsError(PlatformError):
    status_code = 429

    def __init__(self, msg: str, *, retry_after_s: float) -> None:
        super().__init__(msg)
        self.retry_after_s = retry_after_s


class InvalidRequestError(PlatformError):
    status_code = 422


class CommandError(PlatformError):
    def __init__(self, msg: str, *, mid: str, code: int | None = None) -> None:
        super().__init__(msg)
        self.mid = mid
        self.code = code


class CommandRejectedError(CommandError):
    status_code = 422


class CommandFailedError(CommandError):
    status_code = 502


class CommandTimedOutError(CommandError):
    status_code = 504


class BrokerUnavailableError(CommandError):
    status_code = 503
