class AudioError(Exception):
    """A file that cannot be used as audio. The message is a one-line reason for users."""

    def __init__(self, reason: str) -> None:
        super().__init__(" ".join(reason.split())[:300])
