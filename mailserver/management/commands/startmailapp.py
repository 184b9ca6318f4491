from pathlib import Path
from typing import Any

from django.core.management.templates import TemplateCommand

import mailserver

TEMPLATE = Path(mailserver.__file__).parent / "templates" / "app_template"


class Command(TemplateCommand):
    help = (
        "Creates a Django app with a mailbox.py (address patterns), mailers.py "
        "(mail views) and a test, in the current directory or the given one."
    )
    missing_args_message = "You must provide an application name."

    def handle(self, *args: Any, **options: Any) -> None:
        # TemplateCommand.handle takes the kind ("app") first; ours knows it.
        app_name = options.pop("name")
        target = options.pop("directory")
        options.setdefault("template", None)
        options["template"] = options["template"] or str(TEMPLATE)
        super().handle("app", app_name, target, **options)
