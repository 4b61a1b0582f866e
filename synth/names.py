"""Word lists for the synthetic OPUS store: names, places, streets, premises.

Plain data, no logic. Weights are rough relative frequencies for Greater Manchester (common
British surnames dominate; South Asian, Irish, Polish, African, Chinese and other European
names appear in realistic minority shares) — enough for fuzzy matching to meet the kinds of
collisions and spellings it meets in real extracts. Everything is upper case, as OPUS held it.
"""

from __future__ import annotations

# (surname, weight). Includes apostrophes, prefixes with spaces and non-ASCII letters on
# purpose: they must survive the move "byte-for-byte in meaning".
SURNAMES: tuple[tuple[str, float], ...] = (
    ("SMITH", 100), ("JONES", 80), ("WILLIAMS", 60), ("TAYLOR", 55), ("BROWN", 55),
    ("DAVIES", 45), ("EVANS", 40), ("WILSON", 38), ("THOMAS", 35), ("JOHNSON", 35),
    ("ROBERTS", 33), ("ROBINSON", 30), ("THOMPSON", 30), ("WRIGHT", 30), ("WALKER", 30),
    ("WHITE", 28), ("EDWARDS", 25), ("HUGHES", 25), ("GREEN", 25), ("HALL", 25),
    ("LEWIS", 24), ("HARRIS", 24), ("CLARKE", 24), ("PATEL", 30), ("JACKSON", 22),
    ("WOOD", 22), ("TURNER", 20), ("MARTIN", 20), ("COOPER", 20), ("HILL", 20),
    ("WARD", 19), ("MORRIS", 19), ("MOORE", 19), ("CLARK", 18), ("LEE", 18),
    ("KING", 18), ("BAKER", 18), ("HARRISON", 18), ("MORGAN", 17), ("ALLEN", 17),
    ("JAMES", 17), ("SCOTT", 16), ("PHILLIPS", 16), ("WATSON", 16), ("DAVIS", 16),
    ("PARKER", 15), ("PRICE", 15), ("BENNETT", 15), ("YOUNG", 15), ("GRIFFITHS", 14),
    ("MITCHELL", 14), ("KELLY", 14), ("COOK", 14), ("CARTER", 14), ("RICHARDSON", 13),
    ("BAILEY", 13), ("COLLINS", 13), ("BELL", 13), ("SHAW", 13), ("MURPHY", 13),
    ("MILLER", 12), ("COX", 12), ("RICHARDS", 12), ("HOWARD", 11), ("MARSHALL", 11),
    ("SIMPSON", 11), ("ELLIS", 11), ("ADAMS", 11), ("WILKINSON", 11), ("FOSTER", 10),
    ("CHAPMAN", 10), ("MASON", 10), ("BUTLER", 10), ("HOLT", 9), ("BARLOW", 9),
    ("HOLDEN", 8), ("LOMAX", 6), ("OGDEN", 6), ("SHARPLES", 5), ("BRADSHAW", 7),
    ("KHAN", 25), ("ALI", 22), ("HUSSAIN", 22), ("AHMED", 18), ("BEGUM", 12),
    ("SHAH", 8), ("IQBAL", 8), ("AKHTAR", 7), ("MAHMOOD", 7), ("RAHMAN", 6),
    ("ISLAM", 5), ("SINGH", 8), ("KAUR", 5), ("KUMAR", 4), ("MIAH", 5), ("RASHID", 4),
    ("O'BRIEN", 6), ("O'NEILL", 5), ("O'CONNOR", 5), ("O'SULLIVAN", 3), ("O'REILLY", 3),
    ("O'HARA", 3), ("D'ARCY", 1), ("MCDONALD", 6), ("MACDONALD", 4), ("MCCARTHY", 4),
    ("MCGRATH", 3), ("DOYLE", 5), ("BYRNE", 5), ("RYAN", 5), ("WALSH", 6), ("QUINN", 4),
    ("NÍ BHRIAIN", 0.6), ("NÍ CHONAILL", 0.4), ("MAC GIOLLA", 0.3), ("Ó BRIAIN", 0.4),
    ("NOWAK", 3), ("KOWALSKI", 2), ("WIŚNIEWSKI", 1), ("WÓJCIK", 1), ("KOWALCZYK", 1),
    ("KAMIŃSKI", 1), ("LEWANDOWSKI", 2), ("DĄBROWSKI", 1), ("ZIELIŃSKI", 1), ("SZYMAŃSKI", 1),
    ("MÜLLER", 1), ("SCHRÖDER", 0.5), ("GARCÍA", 1), ("FERNÁNDEZ", 0.5), ("GONZÁLEZ", 0.5),
    ("PÉREZ", 0.5), ("SILVA", 1), ("SANTOS", 1), ("ÖZTÜRK", 0.5), ("YILMAZ", 1), ("ŞAHIN", 0.5),
    ("NGUYEN", 1), ("TRAN", 0.5), ("CHEN", 1.5), ("WANG", 1.5), ("LI", 1), ("ZHANG", 1),
    ("WONG", 1), ("OKAFOR", 1), ("ADEYEMI", 1), ("OKONKWO", 0.7), ("MENSAH", 0.7),
    ("OSEI", 0.5), ("MOHAMED", 3), ("ABDI", 1), ("HASSAN", 2), ("ABDULLAHI", 0.5),
    ("POPESCU", 0.7), ("POPA", 0.5), ("IONESCU", 0.3), ("HORVÁTH", 0.3), ("DVOŘÁK", 0.3),
    ("PETROVIĆ", 0.3), ("JOVANOVIĆ", 0.3), ("KAZLAUSKAS", 0.3), ("BĒRZIŅŠ", 0.2),
    ("LEFÈVRE", 0.3), ("DUBOIS", 0.3), ("SØRENSEN", 0.2), ("ÅBERG", 0.2), ("DE LA CRUZ", 0.3),
    ("VAN DER BERG", 0.3), ("ST JOHN", 0.3),
)

# Names with several given names get two of these ("JOHN PAUL", "SARAH JANE").
MALE_FORENAMES: tuple[tuple[str, float], ...] = (
    ("JOHN", 30), ("DAVID", 30), ("MICHAEL", 28), ("PAUL", 25), ("ANDREW", 22), ("MARK", 22),
    ("JAMES", 25), ("PETER", 15), ("STEVEN", 15), ("CHRISTOPHER", 18), ("DANIEL", 20),
    ("THOMAS", 18), ("JOSEPH", 12), ("MATTHEW", 15), ("RYAN", 14), ("LIAM", 14), ("JORDAN", 10),
    ("CONNOR", 10), ("KIERAN", 8), ("JAMIE", 10), ("DEAN", 8), ("LEE", 10), ("CRAIG", 9),
    ("WAYNE", 8), ("GARY", 9), ("CARL", 8), ("ANTHONY", 12), ("KEVIN", 9), ("IAN", 9),
    ("STEPHEN", 12), ("RICHARD", 10), ("ROBERT", 12), ("WILLIAM", 10), ("GEORGE", 8),
    ("HARRY", 8), ("JACK", 10), ("OLIVER", 6), ("CHARLIE", 6), ("MOHAMMED", 14),
    ("MUHAMMAD", 8), ("MOHAMMAD", 5), ("AHMED", 4), ("ALI", 4), ("IMRAN", 4), ("ADNAN", 3),
    ("BILAL", 3), ("HAMZA", 3), ("OMAR", 3), ("USMAN", 3), ("ZAIN", 2), ("TARIQ", 2),
    ("ŁUKASZ", 2), ("PIOTR", 2), ("KRZYSZTOF", 1), ("TOMASZ", 2), ("PAWEŁ", 1), ("MICHAŁ", 1),
    ("JAKUB", 1), ("GRZEGORZ", 1), ("JOSÉ", 1), ("JESÚS", 0.5), ("ANDRÉ", 1), ("FRANÇOIS", 0.5),
    ("JÜRGEN", 0.3), ("BJÖRN", 0.3), ("SØREN", 0.2), ("MEHMET", 0.8), ("EMRE", 0.5),
    ("SEÁN", 1), ("SEAN", 4), ("PÁDRAIG", 0.5), ("EOIN", 1), ("CIARÁN", 1), ("OISÍN", 0.5),
    ("DECLAN", 2), ("KWAME", 0.8), ("CHIDI", 0.6), ("OLUWASEUN", 0.5), ("EMEKA", 0.6),
    ("TUNDE", 0.6), ("ABDIRAHMAN", 0.5), ("MIHAI", 0.6), ("ANDREI", 0.6), ("IONUȚ", 0.3),
    ("MINH", 0.4), ("WEI", 0.6), ("JUN", 0.4),
)
FEMALE_FORENAMES: tuple[tuple[str, float], ...] = (
    ("SARAH", 25), ("EMMA", 20), ("LAURA", 20), ("REBECCA", 15), ("GEMMA", 12), ("KATIE", 12),
    ("CLAIRE", 14), ("NICOLA", 12), ("LISA", 14), ("MICHELLE", 12), ("JOANNE", 12), ("KELLY", 10),
    ("DONNA", 8), ("AMY", 12), ("CHLOE", 10), ("JESSICA", 10), ("HANNAH", 10), ("LAUREN", 10),
    ("SOPHIE", 10), ("OLIVIA", 6), ("EMILY", 8), ("GRACE", 6), ("JADE", 8), ("DANIELLE", 8),
    ("STACEY", 7), ("SHARON", 8), ("SUSAN", 9), ("KAREN", 9), ("JULIE", 9), ("MARGARET", 6),
    ("ELIZABETH", 8), ("MARY", 7), ("PATRICIA", 5), ("JANE", 6), ("ANNE", 6), ("LOUISE", 6),
    ("FATIMA", 5), ("AISHA", 4), ("AYESHA", 4), ("SAMINA", 2), ("NAZIA", 2), ("SHAZIA", 2),
    ("ZAINAB", 2), ("MARYAM", 3), ("AMINA", 2), ("ZOË", 2), ("ZOE", 4), ("CHLOË", 0.5),
    ("SIÂN", 1), ("SINÉAD", 1), ("NIAMH", 2), ("SAOIRSE", 1), ("AOIFE", 1), ("CAOIMHE", 0.5),
    ("RENÉE", 0.5), ("CÉLINE", 0.5), ("AGNIESZKA", 1), ("KATARZYNA", 1), ("MAŁGORZATA", 0.5),
    ("JOANNA", 1), ("MAGDALENA", 1), ("ŻANETA", 0.3), ("MARÍA", 0.6), ("INÊS", 0.3),
    ("NGOZI", 0.5), ("CHIAMAKA", 0.4), ("ADAEZE", 0.3), ("FARHIYA", 0.4), ("IOANA", 0.5),
    ("ANDREEA", 0.4), ("LINH", 0.3), ("MEI", 0.4), ("XIU", 0.2),
)

# Areas of each OPUS division, with the postcode districts that serve them. Postcodes made
# from these are "of the right area" (SK for Stockport, WA14/15 in Trafford, BL for Bolton...).
DIVISION_AREAS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "MC": (("CITY CENTRE", ("M1", "M2", "M3", "M4")), ("ANCOATS", ("M4",)),
           ("NORTHERN QUARTER", ("M1", "M4")), ("CASTLEFIELD", ("M3",)), ("PICCADILLY", ("M1",)),
           ("DEANSGATE", ("M3",)), ("SPINNINGFIELDS", ("M3",))),
    "MN": (("CHEETHAM HILL", ("M8",)), ("CRUMPSALL", ("M8",)), ("BLACKLEY", ("M9",)),
           ("HARPURHEY", ("M9",)), ("MOSTON", ("M40",)), ("NEWTON HEATH", ("M40",)),
           ("MILES PLATTING", ("M40",)), ("COLLYHURST", ("M40",)), ("CLAYTON", ("M11",)),
           ("OPENSHAW", ("M11",)), ("BESWICK", ("M11",)), ("GORTON", ("M18", "M12"))),
    "MS": (("HULME", ("M15",)), ("MOSS SIDE", ("M14", "M16")), ("RUSHOLME", ("M14",)),
           ("FALLOWFIELD", ("M14",)), ("LONGSIGHT", ("M13", "M12")), ("ARDWICK", ("M12", "M13")),
           ("LEVENSHULME", ("M19",)), ("BURNAGE", ("M19",)), ("WITHINGTON", ("M20",)),
           ("DIDSBURY", ("M20",)), ("CHORLTON", ("M21",)), ("NORTHENDEN", ("M22",)),
           ("WYTHENSHAWE", ("M22", "M23")), ("BAGULEY", ("M23",)), ("WHALLEY RANGE", ("M16",))),
    "SA": (("SALFORD", ("M5", "M6")), ("ORDSALL", ("M5",)), ("PENDLETON", ("M6",)),
           ("BROUGHTON", ("M7",)), ("KERSAL", ("M7",)), ("ECCLES", ("M30",)), ("SWINTON", ("M27",)),
           ("PENDLEBURY", ("M27",)), ("WALKDEN", ("M28",)), ("LITTLE HULTON", ("M38",)),
           ("IRLAM", ("M44",)), ("CADISHEAD", ("M44",)), ("SALFORD QUAYS", ("M50",)),
           ("WORSLEY", ("M28",))),
    "TR": (("STRETFORD", ("M32",)), ("OLD TRAFFORD", ("M16",)), ("SALE", ("M33",)),
           ("ALTRINCHAM", ("WA14", "WA15")), ("TIMPERLEY", ("WA15",)), ("HALE", ("WA15",)),
           ("URMSTON", ("M41",)), ("FLIXTON", ("M41",)), ("PARTINGTON", ("M31",)),
           ("TRAFFORD PARK", ("M17",)), ("DAVYHULME", ("M41",)), ("BROADHEATH", ("WA14",))),
    "SK": (("STOCKPORT", ("SK1",)), ("EDGELEY", ("SK3",)), ("HEATON NORRIS", ("SK4",)),
           ("REDDISH", ("SK5",)), ("BREDBURY", ("SK6",)), ("MARPLE", ("SK6",)),
           ("HAZEL GROVE", ("SK7",)), ("BRAMHALL", ("SK7",)), ("CHEADLE", ("SK8",)),
           ("CHEADLE HULME", ("SK8",)), ("BRINNINGTON", ("SK5",)), ("OFFERTON", ("SK2",)),
           ("POYNTON", ("SK12",))),
    "TA": (("ASHTON-UNDER-LYNE", ("OL6", "OL7")), ("STALYBRIDGE", ("SK15",)), ("HYDE", ("SK14",)),
           ("DUKINFIELD", ("SK16",)), ("DENTON", ("M34",)), ("AUDENSHAW", ("M34",)),
           ("DROYLSDEN", ("M43",)), ("MOSSLEY", ("OL5",)), ("HATTERSLEY", ("SK14",))),
    "OL": (("OLDHAM", ("OL1", "OL8", "OL9")), ("CHADDERTON", ("OL9",)), ("ROYTON", ("OL2",)),
           ("SHAW", ("OL2",)), ("FAILSWORTH", ("M35",)), ("LEES", ("OL4",)),
           ("SADDLEWORTH", ("OL3",)), ("HOLLINWOOD", ("OL8",)), ("GLODWICK", ("OL4",))),
    "RO": (("ROCHDALE", ("OL11", "OL12", "OL16")), ("MIDDLETON", ("M24",)), ("HEYWOOD", ("OL10",)),
           ("LITTLEBOROUGH", ("OL15",)), ("MILNROW", ("OL16",)), ("SMALLBRIDGE", ("OL12",))),
    "BU": (("BURY", ("BL9", "BL8")), ("RADCLIFFE", ("M26",)), ("PRESTWICH", ("M25",)),
           ("WHITEFIELD", ("M45",)), ("RAMSBOTTOM", ("BL0",)), ("TOTTINGTON", ("BL8",))),
    "BO": (("BOLTON", ("BL1", "BL2", "BL3")), ("FARNWORTH", ("BL4",)), ("KEARSLEY", ("BL4",)),
           ("HORWICH", ("BL6",)), ("WESTHOUGHTON", ("BL5",)), ("BLACKROD", ("BL6",)),
           ("LITTLE LEVER", ("BL3",)), ("BROMLEY CROSS", ("BL7",)), ("DEANE", ("BL3",))),
    "WI": (("WIGAN", ("WN1", "WN3", "WN5", "WN6")), ("LEIGH", ("WN7",)), ("ATHERTON", ("M46",)),
           ("TYLDESLEY", ("M29",)), ("HINDLEY", ("WN2",)), ("ASHTON-IN-MAKERFIELD", ("WN4",)),
           ("GOLBORNE", ("WA3",)), ("ORRELL", ("WN5",)), ("STANDISH", ("WN6",)), ("INCE", ("WN2",))),
}

# Relative volume of recorded crime by division (Manchester's three divisions carry most).
DIVISION_WEIGHTS: dict[str, float] = {
    "MC": 11, "MN": 9, "MS": 9, "SA": 8, "TR": 6, "SK": 8, "TA": 7, "OL": 8, "RO": 7,
    "BU": 5, "BO": 10, "WI": 10,
}
# Beats per division ('MC01'..'MC14').
DIVISION_BEATS: dict[str, int] = {
    "MC": 14, "MN": 18, "MS": 22, "SA": 16, "TR": 14, "SK": 16, "TA": 12, "OL": 14, "RO": 12,
    "BU": 10, "BO": 16, "WI": 18,
}

STREET_BASES: tuple[str, ...] = (
    "ACACIA", "ALBERT", "ALEXANDRA", "ASH", "ASHTON OLD", "BEECH", "BIRCH", "BRIDGE", "BROOK",
    "BURY NEW", "CHAPEL", "CHERRY", "CHESTER", "CHURCH", "CLARENCE", "CROSS", "DALE", "DERBY",
    "DOVER", "ELM", "FAIRFIELD", "FERN", "GEORGE", "GLADSTONE", "GRANGE", "GREEN", "HALL",
    "HAWTHORN", "HEATON", "HIGHFIELD", "HILL", "HOLLY", "KING", "LANCASTER", "LAUREL",
    "LIVERPOOL", "LORD", "MANCHESTER", "MAPLE", "MARKET", "MILL", "MOSS", "NELSON", "NEW",
    "NORTH", "OAK", "OLDHAM", "ORCHARD", "PARK", "PRINCESS", "QUEEN", "RAILWAY", "REGENT",
    "ROCHDALE", "ROSE", "SCHOOL", "SPRING", "STATION", "STOCKPORT", "VICTORIA", "WATER",
    "WELLINGTON", "WILLOW", "WILMSLOW", "WINDSOR", "WOOD", "YORK", "ST JOHN'S", "QUEEN'S",
    "KING'S", "ST MARY'S", "BISHOP'S", "HYDE", "BOLTON", "CHORLEY", "WIGAN", "DEANSGATE",
    "PORTLAND", "OXFORD", "BLACKBURN", "LEIGH", "WARRINGTON", "BARLOW MOOR", "PRINCESS PARK",
)
STREET_SUFFIXES: tuple[tuple[str, float], ...] = (
    ("STREET", 30), ("ROAD", 30), ("AVENUE", 10), ("LANE", 8), ("CLOSE", 6), ("DRIVE", 5),
    ("GROVE", 4), ("TERRACE", 3), ("WAY", 3), ("CRESCENT", 3), ("PLACE", 2), ("COURT", 2),
)
BUILDING_NAMES: tuple[str, ...] = (
    "VICTORIA", "ALBERT", "PARKSIDE", "RIVERSIDE", "MILLENNIUM", "CANAL", "LOWRY", "QUAYSIDE",
    "CROWN", "NORTHGATE", "ST GEORGE'S", "HANOVER", "BEETHAM", "ECHO", "CHURCHILL", "PENNINE",
)

# Busy premises: shops and stations at the landmarks of gm_places.csv, with the address and
# postcode OPUS would hold. Many crimes share these, sometimes with the address typed
# differently ("variants") — realistic material for fuzzy matching of re-keyed records.
# (place as in gm_places.csv, division, canonical address, postcode, variants)
BUSY_PREMISES: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("Piccadilly Gardens (Metrolink stop)", "MC", "TESCO EXPRESS, 9 PICCADILLY GARDENS, MANCHESTER", "M1 1RG",
     ("TESCO EXPRESS PICCADILLY GDNS", "TESCO, 9 PICCADILLY GARDENS, CITY CENTRE")),
    ("Piccadilly Gardens (Metrolink stop)", "MC", "BOOTS, 32 PICCADILLY, MANCHESTER", "M1 1LQ",
     ("BOOTS THE CHEMIST, PICCADILLY", "BOOTS 32 PICCADILLY")),
    ("Piccadilly Gardens (Metrolink stop)", "MC", "PICCADILLY GARDENS METROLINK STOP, MANCHESTER", "M1 1RG",
     ("PICCADILLY GARDENS TRAM STOP", "METROLINK, PICCADILLY GDNS")),
    ("St Peter's Square (Metrolink stop)", "MC", "ST PETER'S SQUARE METROLINK STOP, MANCHESTER", "M2 3NQ",
     ("ST PETERS SQ TRAM STOP", "ST PETER'S SQ, CITY CENTRE")),
    ("Manchester Victoria (Metrolink stop)", "MC", "MANCHESTER VICTORIA STATION, TODD STREET", "M3 1WY",
     ("VICTORIA STATION, MANCHESTER", "VICTORIA RAILWAY STATION TODD ST")),
    ("Shudehill (Metrolink stop)", "MC", "ARNDALE CENTRE, MARKET STREET, MANCHESTER", "M4 3AQ",
     ("MANCHESTER ARNDALE, MARKET ST", "ARNDALE SHOPPING CENTRE")),
    ("Shudehill (Metrolink stop)", "MC", "PRIMARK, 106 MARKET STREET, MANCHESTER", "M1 1WA",
     ("PRIMARK MARKET ST", "PRIMARK, MARKET STREET, CITY CENTRE")),
    ("Deansgate-Castlefield (Metrolink stop)", "MC", "SAINSBURY'S LOCAL, 100 DEANSGATE, MANCHESTER", "M3 2GP",
     ("SAINSBURYS LOCAL DEANSGATE", "SAINSBURY'S, 100 DEANSGATE")),
    ("Chorlton (Metrolink stop)", "MS", "CO-OP FOOD, 528 WILBRAHAM ROAD, CHORLTON", "M21 9AW",
     ("COOP, WILBRAHAM RD, CHORLTON", "CO-OP 528 WILBRAHAM ROAD")),
    ("MediaCityUK (Metrolink stop)", "SA", "TESCO EXPRESS, MEDIACITYUK, SALFORD QUAYS", "M50 2EQ",
     ("TESCO MEDIA CITY", "TESCO EXPRESS, THE BRIDGE, MEDIACITYUK")),
    ("Eccles (Metrolink stop)", "SA", "ASDA, 200 CHURCH STREET, ECCLES", "M30 0LS",
     ("ASDA ECCLES", "ASDA SUPERSTORE, CHURCH ST, ECCLES")),
    ("Old Trafford (stop)", "TR", "OLD TRAFFORD FOOTBALL GROUND, SIR MATT BUSBY WAY", "M16 0RA",
     ("MANCHESTER UNITED FC, OLD TRAFFORD", "OLD TRAFFORD STADIUM")),
    ("Trafford Centre (stop)", "TR", "SELFRIDGES, THE TRAFFORD CENTRE, TRAFFORD PARK", "M17 8DA",
     ("SELFRIDGES TRAFFORD CENTRE", "SELFRIDGES & CO, INTU TRAFFORD CENTRE")),
    ("Trafford Centre (stop)", "TR", "JD SPORTS, THE TRAFFORD CENTRE, TRAFFORD PARK", "M17 8AA",
     ("J D SPORTS, TRAFFORD CENTRE", "JD SPORTS TRAFFORD CTR")),
    ("Prestwich (Metrolink stop)", "BU", "TESCO EXTRA, BURY NEW ROAD, PRESTWICH", "M25 1AA",
     ("TESCO PRESTWICH", "TESCO EXTRA BURY NEW RD")),
)

VEHICLES: tuple[str, ...] = (
    "BLACK VW GOLF", "SILVER FORD FOCUS", "WHITE FORD TRANSIT VAN", "BLUE VAUXHALL CORSA",
    "GREY AUDI A3", "BLACK BMW 3 SERIES", "RED SEAT LEON", "WHITE MERCEDES SPRINTER",
    "SILVER TOYOTA PRIUS (PRIVATE HIRE)", "BLACK RANGE ROVER EVOQUE", "GREEN SKODA OCTAVIA",
    "BLUE HONDA CIVIC", "WHITE PEUGEOT 207", "BLACK YAMAHA SCOOTER", "SILVER NISSAN QASHQAI",
)
NICKNAMES: tuple[str, ...] = (
    "BIG MAN", "SKINNY", "LITTLE J", "SCOUSE", "GINGE", "DIDDY", "T-BONE", "SMUDGE", "BOO",
    "KRAZY K", "MAD DOG", "TINY", "YOUNG G", "LEFTY", "SPARKS",
)
DRUGS: tuple[str, ...] = (
    "HEROIN", "CRACK COCAINE", "COCAINE", "CANNABIS", "SKUNK", "MDMA", "SPICE", "KETAMINE",
    "AMPHETAMINE", "DIAZEPAM",
)
PROPERTY: tuple[str, ...] = (
    "MOBILE PHONE", "LAPTOP", "HANDBAG", "WALLET", "JEWELLERY", "CASH", "BICYCLE", "TOOLS",
    "GAMES CONSOLE", "TELEVISION", "SAT NAV", "CAR KEYS", "WATCH", "PASSPORT", "BANK CARDS",
    "PERFUME", "ALCOHOL", "MEAT", "RAZOR BLADES", "DESIGNER CLOTHING", "CATALYTIC CONVERTER",
)
