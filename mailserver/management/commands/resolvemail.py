from django.core.management.base import BaseCommand

from mailserver.exceptions import BadAddressSignature, RecipientNotFound
from mailserver.resolvers import resolve


def _describe(pattern) -> str:
    return " ".join(repr(p.regex_string) for p in pattern)


class Command(BaseCommand):
    help = "Show which mail view each address reaches, or what was tried."

    def add_arguments(self, parser):
        parser.add_argument("addresses", nargs="+", metavar="ADDRESS")

    def handle(self, *args, **options):
        failed = 0
        for address in options["addresses"]:
            try:
                match = resolve(address)
            except RecipientNotFound as exc:
                failed += 1
                self.stdout.write(f"{address}: no route. Tried:")
                for tried in exc.tried:
                    self.stdout.write(f"    {_describe(tried)}")
                continue
            except BadAddressSignature as exc:
                failed += 1
                self.stdout.write(f"{address}: refused, {exc.outcome.enhanced} {exc}")
                continue
            name = f" (name {match.view_name!r})" if match.route_name else ""
            self.stdout.write(
                f"{address} -> {match._func_path}{name} args={match.args!r} kwargs={match.kwargs!r}"
            )
            if match.signature is not None:
                sig = match.signature
                bound = " bound to a sender" if sig.is_bound else ""
                expires = f", expires {sig.expires.isoformat()}" if sig.expires else ""
                self.stdout.write(f"    signed{bound}, issued {sig.issued.isoformat()}{expires}")
        if failed:
            raise SystemExit(1)
