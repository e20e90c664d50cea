"""Seed steps for the demo organisation, its teams and its people (see config/demo.py).

Every phone number is from Ofcom's range reserved for drama (020 7946 0xxx), every address
ends in .example, and the crisis text says it is a demo, so nobody can mistake the seed for
a real service.
"""

from accounts.models import CrisisLink, LineManagementLink, Organisation, Team, User
from config.demo import DemoData, Persona

ORGANISATION = "Riverside Mental Health Trust"
DOMAIN = "riverside.example"

CRISIS_TEXT = (
    "This is a demo organisation: the numbers and links below are made up. In a real crisis, "
    "call your local emergency number. You do not have to carry this alone: in a real Alongside "
    "organisation, the people listed here are there to talk, any time."
)
CRISIS_LINKS = [
    ("Riverside staff support line (demo)", "020 7946 0018", "https://support.riverside.example/"),
    ("Out-of-hours duty manager (demo)", "020 7946 0744", ""),
    ("Employee assistance programme (demo)", "020 7946 0391", "https://eap.riverside.example/talk"),
]

TEAMS = {
    "crisis": "Crisis Resolution Team",
    "community": "Community Recovery Team",
    "peer": "Peer Support Team",
}

# key: (display name, pronouns, team key, capabilities). Keys are stable: later steps use them.
PEOPLE = {
    "admin": ("Ada Okafor", "she/her", "peer", {"is_org_admin": True}),
    "manager": ("Morgan Hughes", "they/them", "crisis", {"is_member": False}),
    "facilitator": ("Priya Shah", "she/her", "crisis", {"is_facilitator": True}),
    "facilitator_community": ("Sam Adeyemi", "he/him", "community", {"is_facilitator": True}),
    "facilitator_peer": ("Jordan Reilly", "they/them", "peer", {"is_facilitator": True}),
    "member": ("Alex Morgan", "he/him", "crisis", {}),
    "crisis_2": ("Bea Lindqvist", "she/her", "crisis", {}),
    "crisis_3": ("Chidi Nwosu", "he/him", "crisis", {}),
    "crisis_4": ("Dana Kowalski", "", "crisis", {}),
    "crisis_5": ("Eli Fraser", "they/them", "crisis", {}),
    "community_1": ("Fatima Rahman", "she/her", "community", {}),
    "community_2": ("Gareth Evans", "he/him", "community", {}),
    "community_3": ("Hana Sato", "she/her", "community", {}),
    "community_4": ("Isaac Boateng", "he/him", "community", {}),
    "community_5": ("Jess Campbell", "", "community", {}),
    "peer_1": ("Kai Thompson", "he/him", "peer", {}),
    "peer_2": ("Lena Novak", "she/her", "peer", {}),
    "peer_3": ("Marcus Bell", "he/him", "peer", {}),
    "peer_4": ("Nia Roberts", "she/her", "peer", {}),
    "peer_5": ("Omar Haddad", "he/him", "peer", {}),
}
MANAGER_TEAMS = ["crisis", "community"]
LINE_MANAGEMENT = [
    ("manager", "facilitator"),
    ("manager", "facilitator_community"),
    ("facilitator", "member"),
    ("facilitator", "crisis_2"),
    ("facilitator_community", "community_1"),
    ("facilitator_peer", "peer_1"),
]


def email_for(name: str) -> str:
    return f"{name.split()[0].lower()}@{DOMAIN}"


def seed_organisation(demo: DemoData) -> None:
    organisation, _ = Organisation.objects.update_or_create(
        name=ORGANISATION, defaults={"time_zone": "Europe/London", "crisis_text": CRISIS_TEXT}
    )
    for position, (label, phone, url) in enumerate(CRISIS_LINKS):
        CrisisLink.objects.update_or_create(
            organisation=organisation,
            label=label,
            defaults={"phone": phone, "url": url, "position": position},
        )
    demo.organisation = organisation
    for key, name in TEAMS.items():
        demo.teams[key], _ = Team.objects.get_or_create(organisation=organisation, name=name)


def seed_people(demo: DemoData) -> None:
    for key, (name, pronouns, team_key, capabilities) in PEOPLE.items():
        fields = {
            "display_name": name,
            "pronouns": pronouns,
            "organisation": demo.organisation,
            "team": demo.teams[team_key],
            "is_member": True,
            "is_facilitator": False,
            "is_org_admin": False,
            "is_active": True,
            **capabilities,
        }
        # Only new people get the demo password: someone trying the demo may have changed theirs.
        demo.people[key], _ = User.objects.update_or_create(
            email=email_for(name),
            defaults=fields,
            create_defaults={**fields, "password": demo.password_hash()},
        )
    demo.people["manager"].managed_teams.set([demo.teams[key] for key in MANAGER_TEAMS])
    for manager, report in LINE_MANAGEMENT:
        LineManagementLink.objects.get_or_create(manager=demo.people[manager], report=demo.people[report])

    managed = " and ".join(TEAMS[key] for key in MANAGER_TEAMS)
    demo.personas.extend(
        [
            _persona(demo, "Organisation admin", "admin", "people, teams, invitations and policies"),
            _persona(demo, "Manager", "manager", f"anonymous participation summaries for {managed}"),
            _persona(demo, "Facilitator", "facilitator", "set up circles and rotations; also a member"),
            _persona(demo, "Member", "member", "join circles and write reflections"),
        ]
    )


def _persona(demo: DemoData, role: str, key: str, try_this: str) -> Persona:
    person = demo.people[key]
    return Persona(role=role, name=person.display_name, email=person.email, try_this=try_this)
