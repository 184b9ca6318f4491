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
        if options.get("verbosity", 1) >= 1:
            self.stdout.write(NEXT_STEPS.format(name=app_name))


NEXT_STEPS = """\
Created the mail app {name!r}. Next:
  1. Add "mailserver" and "{name}" to INSTALLED_APPS.
  2. Route addresses to it: ROOT_MAILCONF = "{name}.mailbox", or include("{name}.mailbox")
     from your own ROOT_MAILCONF.
  3. For production, add "mailserver.store" to INSTALLED_APPS and set MAIL_STORE_ROOT to a
     private directory, then migrate: each message is kept before it is answered and handled
     once however often the MTA delivers it, and a reply that cannot be sent waits in an
     outbox. From cron: "manage.py sendreplies" every few minutes, "manage.py purgemail"
     daily.
"""
