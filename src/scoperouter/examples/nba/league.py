"""The synthetic league of the NBA example: its teams, their rosters and the schedule.

Invariant: deterministic -- :func:`make_rosters` and :func:`make_schedule` draw only from the
``random.Random`` they are given, in a fixed order, so the same generator state gives the
same rosters and games; every team's roster holds :data:`ROSTER_SIZE` distinct players,
its star first, and no player is on two teams.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

TEAMS: tuple[str, ...] = (
    "ATL", "BOS", "BKN", "CHA", "CHI", "CLE", "DAL", "DEN", "DET", "GSW",
    "HOU", "IND", "LAC", "LAL", "MEM", "MIA", "MIL", "MIN", "NOP", "NYK",
    "OKC", "ORL", "PHI", "PHX", "POR", "SAC", "SAS", "TOR", "UTA", "WAS",
)  # fmt: skip

# One well-known face per team so the demo reads naturally; the rest are synthetic.
STARS: Mapping[str, str] = {
    "ATL": "traeyoung", "BOS": "jaysontatum", "BKN": "camthomas", "CHA": "lameloball",
    "CHI": "zachlavine", "CLE": "donovanmitchell", "DAL": "lukadoncic", "DEN": "nikolajokic",
    "DET": "cadecunningham", "GSW": "stephencurry", "HOU": "alperensengun",
    "IND": "tyresehaliburton", "LAC": "kawhileonard", "LAL": "lebronjames", "MEM": "jamorant",
    "MIA": "jimmybutler", "MIL": "giannisantetokounmpo", "MIN": "anthonyedwards",
    "NOP": "zionwilliamson", "NYK": "jalenbrunson", "OKC": "shaigilgeousalexander",
    "ORL": "paolobanchero", "PHI": "joelembiid", "PHX": "kevindurant", "POR": "anferneesimons",
    "SAC": "domantassabonis", "SAS": "victorwembanyama", "TOR": "scottiebarnes",
    "UTA": "laurimarkkanen", "WAS": "kylekuzma",
}  # fmt: skip

_FIRST = (
    "aaron", "alex", "andre", "bam", "ben", "bobby", "brandon", "cam", "chris", "cole", "dante",
    "darius", "david", "derrick", "devin", "dillon", "eric", "evan", "gary", "grant", "isaiah",
    "jalen", "jaden", "jamal", "jarrett", "jeremy", "jordan", "josh", "julius", "keegan",
    "kelly", "kevin", "kyle", "lonnie", "luke", "malik", "marcus", "mason", "max", "mike",
    "miles", "naz", "nick", "norman", "obi", "pat", "quentin", "reggie", "rui", "russell",
    "scott", "seth", "shake", "terry", "tre", "trey", "tyler", "walker", "wendell", "zach",
)  # fmt: skip
_LAST = (
    "adams", "allen", "anderson", "bailey", "barnes", "bates", "bell", "bridges", "brooks",
    "brown", "carter", "clark", "collins", "davis", "dixon", "dunn", "ellis", "evans", "fox",
    "gordon", "grant", "green", "hall", "harris", "hart", "hayes", "hill", "holiday", "house",
    "jackson", "james", "johnson", "jones", "king", "lewis", "lopez", "martin", "miller",
    "mitchell", "moore", "morris", "murray", "nance", "parker", "payton", "porter", "powell",
    "reed", "roberts", "robinson", "ross", "smart", "smith", "strus", "thomas", "thompson",
    "turner", "walker", "wallace", "white", "williams", "wilson", "wright", "young",
)  # fmt: skip

ROSTER_SIZE = 15


@dataclass(frozen=True)
class Game:
    game_id: str
    day: date
    home: str
    away: str


def make_rosters(rng: random.Random) -> dict[str, tuple[str, ...]]:
    """Team -> its players, the star first (index = depth chart)."""
    used: set[str] = set(STARS.values())
    rosters: dict[str, tuple[str, ...]] = {}
    for team in TEAMS:
        names = [STARS[team]]
        while len(names) < ROSTER_SIZE:
            slug = rng.choice(_FIRST) + rng.choice(_LAST)
            if slug in used:
                slug = f"{slug}{rng.randint(2, 9)}"
            if slug in used:
                continue
            used.add(slug)
            names.append(slug)
        rosters[team] = tuple(names)
    return rosters


def make_schedule(rng: random.Random, start: date, end: date) -> tuple[Game, ...]:
    """10 to 15 games a day from ``start`` to ``end`` (a team plays at most once a day)."""
    games: list[Game] = []
    n = 0
    day = start
    while day <= end:
        k = rng.randint(10, 15)
        teams = list(TEAMS)
        rng.shuffle(teams)
        for i in range(k):
            n += 1
            games.append(Game(f"00225{n:05d}", day, teams[2 * i], teams[2 * i + 1]))
        day += timedelta(days=1)
    return tuple(games)
