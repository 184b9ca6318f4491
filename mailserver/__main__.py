"""
``python -m mailserver`` is django-mailpipe, as ``python -m django`` is
django-admin: the same options, the same exit statuses. It serves where the
console script is not on the PATH, and ``python -m mailserver --version``
says which release is installed.
"""

from .pipe import main

if __name__ == "__main__":
    main(prog_name="python -m mailserver")
