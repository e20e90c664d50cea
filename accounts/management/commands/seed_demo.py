from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.demo import seed_demo


class Command(BaseCommand):
    help = "Create or refresh the demo organisation and print how to sign in as each persona."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Seed even when ALONGSIDE_ENV=production (demo sites only)."
        )

    def handle(self, *args, force: bool = False, **options):
        if settings.PRODUCTION and not force:
            raise CommandError(
                "Refusing to add demo people with a published password to a production database. "
                "Use --force only on a demo site."
            )
        demo = seed_demo()
        people = demo.organisation.people.count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo organisation ready: {demo.organisation.name}, "
                f"{len(demo.teams)} teams, {people} people."
            )
        )
        self.stdout.write(f"\nSign in at {settings.SITE_URL}/ with password “{demo.password}” as:\n")
        rows = [("Persona", "Name", "Email", "Try")]
        rows += [(p.role, p.name, p.email, p.try_this) for p in demo.personas]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        for *cells, try_this in rows:
            padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
            self.stdout.write("  " + "  ".join([*padded, try_this]))
        self.stdout.write("\nEvery other demo person signs in the same way: <first name>@riverside.example.")
