"""`python -m emulator` is the same as the `captchala-emulator` command."""

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
