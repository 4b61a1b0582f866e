"""Free text for the synthetic store: MO narratives and intelligence entries.

Texts are assembled from sentence templates filled with names, places and property. To stay
fast at a million crimes, each template family is filled a few hundred times up front (a
*pool*) and rows pick from the pools; only the sentence naming an intelligence subject is
made per row. Texts carry what real OPUS free text carries: commas, semicolons, quotes,
line breaks (LF and CRLF) and, on some rows, trailing spaces at the end of lines.
"""

from __future__ import annotations

import random

from synth import names

# --- MO (modus operandi) narratives, by kind of offence ------------------------------------

_ENTRY = (
    "SNAPPING THE EURO CYLINDER LOCK ON THE FRONT DOOR", "FORCING A REAR GROUND FLOOR WINDOW",
    "AN INSECURE REAR DOOR", "SMASHING THE KITCHEN WINDOW", "AN OPEN BATHROOM WINDOW",
    "PRISING THE PATIO DOOR WITH A SCREWDRIVER TYPE IMPLEMENT", "THE LETTERBOX (FISHING FOR KEYS)",
)
_MO_TEMPLATES: dict[str, tuple[str, ...]] = {
    "burglary": (
        "OFFENDER(S) UNKNOWN GAINED ENTRY TO {premises} BY {entry}. SEARCHED ROOMS AND REMOVED {prop} AND {prop2}.",
        "IP RETURNED HOME AT {time} TO FIND {entry_short} AND {prop} MISSING; CSI ATTENDED, NO MARKS FOUND.",
        "UNKNOWN OFFENDERS ENTERED VIA {entry}, CONDUCTED A TIDY SEARCH, STOLE {prop}, {prop2} AND {prop3}. EXITED SAME WAY.",
        "ATTEMPT ENTRY: DAMAGE TO FRONT DOOR LOCK, NO ENTRY GAINED. NEIGHBOUR HEARD \"BANGING\" AT APPROX {time}.",
    ),
    "vehicle": (
        "VEHICLE ({veh}) PARKED ON {street} OVERNIGHT. OFFENDER SMASHED NEARSIDE WINDOW AND REMOVED {prop}.",
        "IP'S {veh} TAKEN FROM OUTSIDE HOME ADDRESS, KEYS STOLEN IN EARLIER BURGLARY; ANPR HIT ON M60 AT {time}.",
        "{veh} TAMPERED WITH: DOOR LOCK PUNCHED, STEERING COLUMN DAMAGED; NOTHING TAKEN.",
        "CATALYTIC CONVERTER CUT FROM {veh} IN CAR PARK OF {street}; OFFENDERS SEEN USING A JACK AND ANGLE GRINDER.",
    ),
    "shop": (
        "MALE ENTERED STORE, SELECTED {prop} TO THE VALUE OF APPROX £{money} AND LEFT WITHOUT PAYING. CCTV AVAILABLE.",
        "FEMALE CONCEALED {prop} IN A FOIL-LINED BAG; STOPPED BY SECURITY, BECAME ABUSIVE AND DECAMPED.",
        "KNOWN SHOPLIFTER (SEE NOMINAL) TOOK {prop} FROM SHELVES; STORE DETECTIVE STATES \"HE'S IN EVERY DAY\".",
        "TWO MALES DISTRACTED STAFF WHILE A THIRD EMPTIED THE {prop} DISPLAY; ALL LEFT TOWARDS {street}.",
    ),
    "theft": (
        "IP LEFT {prop} UNATTENDED AT {street}; WHEN SHE RETURNED IT HAD GONE. NO CCTV.",
        "{prop} STOLEN FROM IP'S POCKET WHILE ON A CROWDED TRAM, NOTICED AT {time}; PHONE TRACKED TO {area}.",
        "PEDAL CYCLE SECURED WITH A CABLE LOCK OUTSIDE {street}; LOCK CUT, CYCLE TAKEN.",
        "CUSTOMER FILLED VEHICLE WITH £{money} OF FUEL AND DROVE OFF WITHOUT PAYING; VRM RECORDED.",
    ),
    "violence": (
        "IP ASSAULTED OUTSIDE {pub} ON {street} AFTER A VERBAL ARGUMENT; PUNCHED TO THE FACE CAUSING A CUT LIP.",
        "DOMESTIC: IP STATES PARTNER GRABBED HER BY THE THROAT AND SAID \"YOU'RE GOING NOWHERE\". DASH RISK: MEDIUM.",
        "VICTIM STRUCK WITH A BOTTLE IN THE CAR PARK OF {pub}; TAKEN TO MRI, LACERATION TO HEAD, 6 STITCHES.",
        "GROUP OF YOUTHS KICKED IP WHILE HE WAS ON THE FLOOR ON {street}; OFFENDERS RAN TOWARDS {area}.",
        "PUSHING AND SHOVING IN QUEUE AT {pub}; IP KNOCKED TO THE GROUND, GRAZES TO ELBOWS; NO FURTHER INJURY.",
    ),
    "harass": (
        "IP RECEIVING REPEATED TEXT MESSAGES AND CALLS FROM EX-PARTNER DESPITE BEING TOLD TO STOP; MESSAGES SCREENSHOT.",
        "OFFENDER POSTED ABUSIVE COMMENTS ABOUT IP ON FACEBOOK, INCLUDING \"WATCH YOUR BACK\"; IP IN FEAR.",
        "NEIGHBOUR DISPUTE: OFFENDER SHOUTS ABUSE OVER THE FENCE AND FILMS IP'S CHILDREN; ONGOING SINCE LAST YEAR.",
        "OFFENDER SEEN WAITING OUTSIDE IP'S WORKPLACE ON {street} ON FOUR OCCASIONS THIS MONTH.",
    ),
    "sexual": (
        "HISTORIC REPORT; IP DISCLOSED TO SCHOOL STAFF. DETAILS HELD ON RESTRICTED FILE, SEE OIC.",
        "IP TOUCHED INAPPROPRIATELY ON A BUSY TRAM NEAR {area}; OFFENDER LEFT AT NEXT STOP.",
        "IP REPORTS OFFENCE FOLLOWING A NIGHT OUT IN {area}; SOIT OFFICER DEPLOYED, FULL DETAILS RESTRICTED.",
        "MALE EXPOSED HIMSELF TO FEMALE WALKING HER DOG ON {street} AT APPROX {time}.",
    ),
    "robbery": (
        "IP APPROACHED BY TWO MALES ON {street} WHO DEMANDED HIS {prop}; ONE SHOWED A KNIFE AND SAID \"GIVE IT OR ELSE\".",
        "IP PUSHED OFF HIS BIKE AND {prop} TAKEN; OFFENDERS ON A {veh}.",
        "STAFF THREATENED WITH A HAMMER; OFFENDER TOOK £{money} FROM THE TILL AND FLED ON FOOT TOWARDS {area}.",
    ),
    "damage": (
        "OFFENDER KICKED THE DOOR OF IP'S HOUSE CAUSING THE GLASS PANEL TO SMASH.",
        "{veh} PARKED ON {street} HAD ALL FOUR TYRES SLASHED OVERNIGHT; SIMILAR INCIDENTS NEARBY.",
        "GRAFFITI SPRAYED ON THE SHUTTERS OF A SHOP ON {street}, TAG \"{nick}\".",
        "WHEELIE BIN SET ALIGHT AGAINST THE REAR WALL OF A HOUSE ON {street}; FIRE SERVICE ATTENDED.",
    ),
    "drugs": (
        "STOP SEARCH ON {street}: MALE FOUND IN POSSESSION OF A QUANTITY OF {drug}; ARRESTED.",
        "WARRANT EXECUTED AT ADDRESS ON {street}; {drug} AND £{money} CASH RECOVERED, SCALES AND DEALER BAGS.",
        "VEHICLE ({veh}) STOPPED; SMELL OF CANNABIS, SMALL BAG OF {drug} FOUND IN DOOR POCKET.",
    ),
    "weapons": (
        "MALE SEEN WITH A KNIFE ON {street}; STOPPED AND SEARCHED, LOCK KNIFE (3 INCH BLADE) RECOVERED.",
        "FOLLOWING REPORTS OF \"A MAN WITH A GUN\" ARMED OFFICERS ATTENDED {street}; BB GUN RECOVERED.",
        "KITCHEN KNIFE FOUND IN WAISTBAND DURING ARREST FOR AN UNRELATED MATTER.",
    ),
    "order": (
        "MALE SHOUTING AND SWEARING AT PASSERS-BY OUTSIDE {pub}, CAUSING ALARM AND DISTRESS; ARRESTED.",
        "LARGE FIGHT OUTSIDE {pub} AT CLOSING TIME; GLASSES THROWN, SEVERAL PERSONS INVOLVED.",
        "RACIALLY ABUSIVE COMMENTS MADE TO A TAXI DRIVER ON {street}; DRIVER RECORDED IT ON DASHCAM.",
    ),
    "misc": (
        "OFFENDER FAILED TO ANSWER BAIL AT {area} POLICE STATION ON THE DATE SET.",
        "VEHICLE DRIVEN AT SPEED THROUGH RED LIGHTS ON {street}, MOUNTING THE PAVEMENT; PURSUIT AUTHORISED.",
        "MALE FOUND IN POSSESSION OF ITEMS BELIEVED STOLEN (CATALYTIC CONVERTERS, TOOLS) IN A {veh}.",
        "CRIME RECORDED FOLLOWING REFERRAL FROM PARTNER AGENCY; DETAILS ON ATTACHED DOCUMENTS.",
    ),
    "homicide": (
        "MAJOR INCIDENT: VICTIM FOUND WITH FATAL INJURIES AT AN ADDRESS ON {street}. SEE MIR / HOLMES ACCOUNT.",
        "SERIOUS ASSAULT; VICTIM CRITICAL AT SALFORD ROYAL. SCENE PRESERVED ON {street}; SIO APPOINTED.",
    ),
}
_MO_FOLLOW_UPS = (
    "HOUSE TO HOUSE ENQUIRIES CONDUCTED, NEGATIVE.",
    "CCTV REQUESTED FROM COUNCIL; AWAITING.",
    "IP DOES NOT WISH TO SUPPORT A PROSECUTION AT THIS TIME.",
    "SUSPECT IDENTIFIED FROM CCTV, SEE NOMINAL LINKS.",
    "VICTIM CARE: VICTIM SUPPORT REFERRAL MADE.",
    "FORENSIC: SWABS TAKEN, SUBMITTED TO LAB.",
    "ENQUIRIES CONTINUING; OIC TO UPDATE.",
    "IP STATES \"I JUST WANT IT LOGGED FOR INSURANCE\".",
)
PUBS = ("THE RED LION", "THE MOON UNDER WATER", "THE BLUE BELL", "THE CASTLE", "THE CROWN",
        "THE WHITE HART", "THE SWAN", "THE GRAPES", "THE BRITONS PROTECTION", "THE NAG'S HEAD",
        "WETHERSPOONS", "THE KING'S ARMS", "THE ROYAL OAK")

# Which MO family each OPUS offence code writes (codes missing here use "misc").
MO_KIND_OF_CODE: dict[str, str] = {
    "HOMICIDE": "homicide", "ATT-MURD": "homicide", "DTH-DANG": "misc",
    "THRT-KILL": "harass", "HARASS": "harass", "HARASS-RA": "harass", "STALK": "harass",
    "MALCOMMS": "harass", "CHILD-CRUEL": "violence", "KIDNAP": "violence", "SLAVERY": "misc",
    "GBH-INT": "violence", "ASLT-INJ": "violence", "ASLT-INJ-RA": "violence", "ASLT-PC-INJ": "violence",
    "ASLT": "violence", "ASLT-RA": "violence", "ASLT-PC": "violence",
    "RAPE-F16": "sexual", "RAPE-M16": "sexual", "SXASLT-F": "sexual", "SXASLT-M": "sexual",
    "SX-NOCONS": "sexual", "GROOMING": "sexual", "EXPOSURE": "sexual",
    "ROB-PERS": "robbery", "ROB-BUS": "robbery",
    "BURG-DW": "burglary", "BURG-DW-ATT": "burglary", "BURG-DIST": "burglary", "BURG-AGG": "burglary",
    "BURG-OTD": "burglary", "BURG-OTD-ATT": "burglary",
    "TFMV": "vehicle", "TOMV": "vehicle", "AVT": "vehicle", "VEH-INTF": "vehicle",
    "SHOP": "shop", "TFP": "theft", "CYCLE": "theft", "THEFT-DW": "theft", "THEFT-EMP": "theft",
    "THEFT-MACH": "theft", "THEFT-OTH": "theft", "BILKING": "theft", "BLACKMAIL": "harass",
    "ARSON-LIFE": "damage", "ARSON": "damage", "CD-DWELL": "damage", "CD-BLDG": "damage",
    "CD-VEH": "damage", "CD-OTH": "damage", "CD-RA": "damage", "CD-THREAT": "damage",
    "DRUG-SUPP": "drugs", "DRUG-POSS": "drugs", "DRUG-CANN": "drugs", "DRUG-OTH": "drugs",
    "FIREARM-INT": "weapons", "FIREARM": "weapons", "WPN-OTH": "weapons", "WPN-BLADE": "weapons",
    "PUB-ORD": "order", "PUB-ORD-RA": "order", "VIOL-DIS": "order", "PUB-ORD-OTH": "order",
}

# --- intelligence ----------------------------------------------------------------------------

_INTEL_OPENERS = (
    "INFORMATION RECEIVED THAT {subject} IS DEALING {drug} FROM AN ADDRESS ON {street}, {area}.",
    "{subject} (AKA \"{nick}\") IS BELIEVED TO BE STORING STOLEN {prop} AT A LOCK-UP OFF {street}.",
    "SOURCE STATES {subject} HAS BEEN CARRYING A KNIFE IN THE {area} AREA, MOST EVENINGS BETWEEN {t1} AND {t2}.",
    "{subject} IS NOW LIVING WITH A NEW PARTNER ON {street}, {area}; NOT AT THE ADDRESS HELD ON PNC.",
    "IT IS SUGGESTED THAT {subject} IS RESPONSIBLE FOR A SERIES OF THEFTS FROM VEHICLES IN {area}; MO MATCHES.",
    "{subject} HAS BEEN SEEN DRIVING A {veh}, OFTEN PARKED ON {street} LATE AT NIGHT.",
    "{subject} IS ASSOCIATING WITH KNOWN OCG MEMBERS IN {area}; SEEN AT {pub} ON SEVERAL OCCASIONS.",
)
_INTEL_SENTENCES = (
    "LOCAL RESIDENTS REPORT HIGH FOOTFALL AT THE ADDRESS: SHORT VISITS, CARS WAITING WITH ENGINES RUNNING.",
    "SUBJECT USES A {veh}, PARTIAL VRM {vrm}.",
    "SUBJECT HAS A NEW MOBILE NUMBER 07{phone}; THE PREVIOUS NUMBER IS NO LONGER IN USE.",
    "SOURCE OVERHEARD SUBJECT SAY \"I'VE GOT TO SORT {nick} OUT, HE OWES ME\".",
    "ASSOCIATES INCLUDE {name2} AND {name3}; BOTH FREQUENT {pub} ON {street}.",
    "DRUGS ARE KEPT IN A SHOEBOX UNDER THE STAIRS, CASH IN THE LOFT.",
    "SUBJECT IS AWARE OF POLICE INTEREST AND HAS STARTED USING A DIFFERENT ROUTE HOME, VIA {street}.",
    "THIS INFORMATION IS CORROBORATED BY THE ANPR HITS OF {date}.",
    "SUBJECT'S CHILDREN ATTEND A SCHOOL IN {area}; CONSIDER SAFEGUARDING.",
    "SUBJECT IS LIKELY TO BE VIOLENT IF APPROACHED, SEE WARNING MARKERS.",
    "NO FURTHER DETAIL AVAILABLE FROM THE SOURCE AT THIS TIME.",
    "SUBJECT SELLS {drug} IN £10 AND £20 DEALS, DELIVERED BY YOUTHS ON PUSH BIKES.",
    "THE {veh} IS REGISTERED TO A FEMALE IN {area}, BELIEVED TO BE SUBJECT'S MOTHER.",
    "SUBJECT HAS BEEN SEEN WITH LARGE AMOUNTS OF CASH; NO KNOWN EMPLOYMENT.",
    "SOURCE STATES: 'HE KEEPS IT IN THE BOOT, ALWAYS THE BOOT'.",
    "VISITS ARE MOSTLY BETWEEN {t1} AND {t2}, SOMETIMES LATER AT WEEKENDS.",
    "SUBJECT IS PLANNING TO TRAVEL TO SPAIN NEXT MONTH; FLIGHT FROM MANCHESTER AIRPORT.",
    "RECOMMEND INTELLIGENCE DEVELOPMENT; CONSIDER A DRUGS WARRANT.",
)
INTEL_HEADERS = ("SOURCE REPORTS:", "INTELLIGENCE LOG:", "FROM PCSO PATROL:", "CHIS REPORT (SANITISED):",
                 "PARTNER AGENCY INFORMATION:", "")


def _fill(template: str, rng: random.Random, areas: tuple[str, ...], streets: tuple[str, ...]) -> str:
    prop = rng.sample(names.PROPERTY, 3)
    return template.format(
        premises=rng.choice(("DWELLING", "TERRACED HOUSE", "GROUND FLOOR FLAT", "SEMI-DETACHED HOUSE",
                             "GARAGE", "SHED", "BUSINESS PREMISES", "SCHOOL")),
        entry=rng.choice(_ENTRY), entry_short=rng.choice(("REAR DOOR INSECURE", "FRONT DOOR FORCED",
                                                          "KITCHEN WINDOW SMASHED")),
        prop=prop[0], prop2=prop[1], prop3=prop[2], veh=rng.choice(names.VEHICLES),
        street=rng.choice(streets), area=rng.choice(areas), pub=rng.choice(PUBS),
        time=f"{rng.randrange(24):02d}{rng.randrange(0, 60, 5):02d}", money=rng.choice((8, 25, 49, 120, 300, 1250)),
        nick=rng.choice(names.NICKNAMES), drug=rng.choice(names.DRUGS),
        t1=f"{rng.randrange(17, 22):02d}00", t2=f"{rng.randrange(0, 4):02d}00",
        vrm=f"{rng.choice('MBYVLKSG')}{rng.choice('ABCDEFGHJKLMNPRSTUVWXY')}{rng.randrange(51, 69):02d}",
        phone=f"{rng.randrange(10**9):09d}", name2=_person(rng), name3=_person(rng),
        date=f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}",
        subject="{subject}",
    )


def _person(rng: random.Random) -> str:
    return f"{rng.choice(names.MALE_FORENAMES)[0]} {rng.choice(names.SURNAMES)[0]}"


class TextPools:
    """Pre-filled sentence pools; rows pick from them (cheap) instead of formatting (dear)."""

    def __init__(self, rng: random.Random, streets: tuple[str, ...], areas: tuple[str, ...],
                 per_template: int = 60):
        self.mo: dict[str, list[str]] = {}
        for kind, templates in _MO_TEMPLATES.items():
            self.mo[kind] = [_fill(t, rng, areas, streets) for t in templates for _ in range(per_template)]
        self.mo_follow_ups = list(_MO_FOLLOW_UPS)
        self.intel_openers = [_fill(t, rng, areas, streets) for t in _INTEL_OPENERS for _ in range(per_template)]
        self.intel_sentences = [_fill(t, rng, areas, streets) for t in _INTEL_SENTENCES for _ in range(per_template)]


def mo_kind(code: str) -> str:
    return MO_KIND_OF_CODE.get(code, "misc")
