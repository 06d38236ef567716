"""Command-line tools' handling of user errors: one line instead of a traceback."""
import functools
import os
import sys

# Errors caused by what the user gave (a missing file, a bad dataset, a config naming an
# unknown module, an optional package a config needs, such as tensorboard or wandb for a
# visualization backend). The tools print their message without a traceback; set
# MMSEG_ICCLD_TRACEBACK=1 to see it anyway.
USER_ERRORS = (FileNotFoundError, NotADirectoryError, KeyError, ValueError, ImportError)


def _short_message(error: BaseException) -> str:
    """The useful line of an error, also when it was re-raised from a dataloader worker."""
    message = str(error).strip().strip('"')
    if 'Original Traceback' in message:
        # torch re-raises worker errors with the worker's traceback in the message
        message = message.rstrip().splitlines()[-1]
    return f'{type(error).__name__}: {message}'


def exit_on_user_error(main):
    """Run ``main``; on a user error print its message and exit with status 1."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as error:
            if os.environ.get('MMSEG_ICCLD_TRACEBACK'):
                raise
            print(f'error: {_short_message(error)}\n'
                  '(set MMSEG_ICCLD_TRACEBACK=1 for the full traceback)', file=sys.stderr)
            sys.exit(1)

    return wrapper
