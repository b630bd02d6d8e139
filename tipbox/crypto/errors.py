"""The one exception every cryptographic rejection raises."""


class Rejected(Exception):  # noqa: N818 - "Rejected" reads better at call sites than RejectedError
    """Raised whenever a check fails: authentication, binding, length, signature or format.

    The message says which check failed; it never contains key material or plaintext.
    """
