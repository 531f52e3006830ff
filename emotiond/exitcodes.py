"""Exit statuses of every ``emotiond`` command and helper process, in one place.

They follow sysexits.h, so scripts and systemd can tell a bad config from a missing camera.
"""

EX_OK = 0
EX_FAILED = 1  # a check ran and said no (a model's self-test, a trigger the daemon did not accept)
EX_USAGE = 64  # bad command-line arguments
EX_DATAERR = 65  # the input was read but is not valid (not an image, no speech, wrong reference output)
EX_NOINPUT = 66  # the input (camera, video, file) is missing or cannot be opened
EX_UNAVAILABLE = 69  # a model, a runtime or the running daemon is not available
EX_SOFTWARE = 70  # emotiond itself failed (shutdown overran its deadline)
EX_CANTCREAT = 73  # an output file cannot be written
EX_CONFIG = 78  # the configuration is invalid
EX_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
