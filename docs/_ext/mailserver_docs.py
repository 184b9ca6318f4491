"""
Documentation generated from the code, so that it cannot drift from it.

- ``outcome-table``: the outcome table, from :mod:`mailserver.status`, with
  the responses and exceptions that stand for each row.
- ``mailserver-settings``: every setting with its default, from
  :mod:`mailserver.conf` (the defaults and the comments above them).
- ``command-help``: a management command's ``--help``, or django-mailpipe's.
- The how-to guides include the READMEs of contrib/, which sit beside the
  configuration files they explain and which the end-to-end tests run; their
  links to one another become links between the pages that include them.
"""

from __future__ import annotations

import inspect
import io
import posixpath
import re
from contextlib import redirect_stdout
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]

# Each contrib README, the page that includes it, and what a link to it
# reads on that page (in the checkout it reads as the file's path).
CONTRIB_PAGES = {
    "contrib/README.md": ("howto/deploying", "Deploying"),
    "contrib/postfix/README.md": ("howto/postfix", "Postfix"),
    "contrib/exim/README.md": ("howto/exim", "Exim"),
    "contrib/postfix/lmtp/README.md": ("howto/lmtp", "Postfix over LMTP"),
    "contrib/exim/lmtp/README.md": ("howto/lmtp", "Exim over LMTP"),
    "contrib/postfix/via/README.md": ("howto/relay", "Postfix's relay"),
    "contrib/exim/via/README.md": ("howto/relay", "Exim's relay"),
    "contrib/auth/README.md": ("howto/verified-senders", "Authentication-Results"),
}


def table(header: list[str], rows: list[list[nodes.Node | str]], widths=None) -> nodes.table:
    """A docutils table; a cell is text (set as inline code when it is wrapped in ``)."""
    tgroup = nodes.tgroup(cols=len(header))
    for width in widths or [1] * len(header):
        tgroup += nodes.colspec(colwidth=width)

    def row(cells):
        entries = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            if isinstance(cell, nodes.Node):
                entry += cell
            else:
                entry += paragraph(cell)
            entries += entry
        return entries

    thead = nodes.thead()
    thead += row(header)
    tbody = nodes.tbody()
    for cells in rows:
        tbody += row(cells)
    tgroup += thead
    tgroup += tbody
    result = nodes.table(classes=["longtable"])
    result += tgroup
    return result


def paragraph(text: str) -> nodes.paragraph:
    """Text with ``code`` spans, as a paragraph."""
    para = nodes.paragraph()
    for i, piece in enumerate(re.split(r"``(.+?)``", text)):
        if piece:
            para += nodes.literal(piece, piece) if i % 2 else nodes.Text(piece)
    return para


class OutcomeTable(SphinxDirective):
    """The outcome table of mailserver/status.py, one row per Outcome member."""

    def run(self):
        from mailserver import exceptions, response
        from mailserver.status import Outcome

        def standing_for(module, base):
            found: dict = {}
            for name, cls in vars(module).items():
                if (
                    inspect.isclass(cls)
                    and issubclass(cls, base)
                    and cls is not base
                    and cls.__module__ == module.__name__
                    and not name.startswith("_")
                    and "outcome" in vars(cls)
                ):
                    found.setdefault(cls.outcome, []).append(name)
            return found

        returned = standing_for(response, response.EmailResponse)
        raised = standing_for(exceptions, exceptions.MailException)
        rows = []
        for outcome in Outcome:
            action = (
                "delivered"
                if outcome.is_success
                else "deferred"
                if outcome.is_temporary
                else "bounced"
            )
            rows.append(
                [
                    f"``{outcome.value}``",
                    str(outcome.smtp_code),
                    outcome.enhanced,
                    str(outcome.exit_code),
                    action,
                    ", ".join(f"``{n}``" for n in returned.get(outcome, [])),
                    ", ".join(f"``{n}``" for n in raised.get(outcome, [])),
                    outcome.text,
                ]
            )
        header = [
            "outcome",
            "SMTP",
            "enhanced",
            "exit",
            "Postfix / Exim",
            "returned",
            "raised",
            "default text",
        ]
        return [table(header, rows, widths=[14, 6, 8, 5, 9, 18, 18, 18])]


def settings_groups() -> list[tuple[list[str], str]]:
    """
    The settings of mailserver/conf.py with the comment above each: a key
    with no comment of its own shares the one of the key before it.
    """
    source = (ROOT / "mailserver" / "conf.py").read_text()
    body = source.split("DEFAULTS: dict[str, Any] = {", 1)[1].split("\n}\n", 1)[0]
    groups: list[tuple[list[str], str]] = []
    comment: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
        elif match := re.match(r'^    "([A-Z_]+)":', line):
            if comment or not groups:
                groups.append(([match[1]], " ".join(comment)))
            else:
                groups[-1][0].append(match[1])
            comment = []
    return groups


def default_text(value) -> str:
    from datetime import timedelta

    day = 24 * 60 * 60
    if isinstance(value, int) and not isinstance(value, bool) and value >= day and value % day == 0:
        return f"{value // day} day{'s' if value // day > 1 else ''} ({value} s)"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1024 * 1024:
        return f"{value // (1024 * 1024)} MiB" if value % (1024 * 1024) == 0 else str(value)
    if isinstance(value, timedelta):
        return str(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...]"


class SettingsTable(SphinxDirective):
    """Every setting of mailserver.conf with its default and what it does."""

    def run(self):
        from mailserver.conf import DEFAULTS

        rows = []
        for names, comment in settings_groups():
            name_cell = nodes.paragraph()
            default_cell = nodes.paragraph()
            for i, name in enumerate(names):
                if i:
                    name_cell += nodes.Text(", ")
                    default_cell += nodes.Text(", ")
                target = nodes.target("", "", ids=[f"setting-{name}"], names=[f"setting-{name}"])
                name_cell += target
                name_cell += nodes.literal(name, name)
                default = default_text(DEFAULTS[name])
                default_cell += nodes.literal(default, default)
            rows.append([name_cell, default_cell, comment])
        return [table(["setting", "default", ""], rows, widths=[20, 20, 40])]


class CommandHelp(SphinxDirective):
    """
    ``.. command-help:: readmail`` prints ``manage.py readmail --help``;
    ``.. command-help:: django-mailpipe`` the pipe's; ``.. command-help:: *``
    a section for each command of mailserver's apps.
    """

    required_arguments = 1
    option_spec = {"caption": directives.unchanged}

    def run(self):
        name = self.arguments[0]
        if name == "*":
            return self.every_command()
        return [self.help_block(name)]

    def every_command(self):
        """A section for each management command of mailserver's apps, new ones included."""
        from django.core.management import get_commands

        sections = []
        for name, app in sorted(get_commands().items()):
            if not app.startswith("mailserver"):
                continue
            section = nodes.section(ids=[f"command-{name}"], names=[f"command-{name}"])
            section += nodes.title(name, name)
            section += self.help_block(name)
            sections.append(section)
        return sections

    def help_block(self, name):
        if name == "django-mailpipe":
            from mailserver.pipe import command

            ctx = command.make_context("django-mailpipe", ["--help"], resilient_parsing=True)
            text = command.get_help(ctx)
        else:
            from django.core.management import get_commands, load_command_class

            command_class = load_command_class(get_commands()[name], name)
            out = io.StringIO()
            parser = command_class.create_parser("manage.py", name)
            with redirect_stdout(out):
                parser.print_help()
            text = out.getvalue()
        text = "\n".join(line.rstrip() for line in text.strip().splitlines())
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return block


def rewrite_contrib_links(app, relative_path, parent_docname, content):
    """
    ``include-read``: a contrib README's relative links to another contrib
    README point to the page that includes it, anchors kept, and read as
    its title where they read as its path.
    """
    path = Path(relative_path)
    if not path.is_absolute():
        path = Path(app.srcdir) / path
    try:
        included = path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return
    if included not in CONTRIB_PAGES:
        return
    base = posixpath.dirname(included)

    def replace(match):
        text, target = match[1], match[2]
        if "://" in target or target.startswith("#"):
            return match[0]
        file, _, anchor = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(base, file))
        if resolved not in CONTRIB_PAGES:
            return match[0]
        page, title = CONTRIB_PAGES[resolved]
        if text.startswith("`") and text.endswith("`"):
            text = title  # the path, which means nothing on the page
        return f"[{text}](/{page}.md{'#' + anchor if anchor else ''})"

    content[0] = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", replace, content[0])


def setup(app):
    app.add_directive("outcome-table", OutcomeTable)
    app.add_directive("mailserver-settings", SettingsTable)
    app.add_directive("command-help", CommandHelp)
    app.connect("include-read", rewrite_contrib_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
