"""Vocabulary of the XLSForm reader: question type spellings, unsupported types, language codes.

Pure tables and small functions, no I/O. Sources: the XLSForm specification (https://xlsform.org,
"Question types", "Metadata", "Multiple language support") and the aliases pyxform accepts
(``pyxform.question_type_dictionary``) — spelled out here so Suara decides for itself what it runs.
"""

from __future__ import annotations

import re

#: Every accepted spelling of a question type -> the Suara type (`questionnaires.model.QUESTION_TYPES`).
#: Keys are compared exactly first, then lower-cased (``dateTime`` and ``datetime`` both work).
TYPE_ALIASES: dict[str, str] = {
    # text
    "text": "text", "string": "text", "q string": "text", "add text prompt": "text",
    # numbers
    "integer": "integer", "int": "integer", "q int": "integer", "add integer prompt": "integer",
    "decimal": "decimal", "q decimal": "decimal", "add decimal prompt": "decimal",
    "range": "range",
    # notes and acknowledgements
    "note": "note", "q note": "note", "add note prompt": "note",
    "acknowledge": "acknowledge", "trigger": "acknowledge", "q acknowledge": "acknowledge",
    "add acknowledge prompt": "acknowledge",
    # dates and times
    "date": "date", "q date": "date", "add date prompt": "date",
    "time": "time",
    "datetime": "datetime", "dateTime": "datetime", "date time": "datetime", "q dateTime": "datetime",
    "q date time": "datetime", "add dateTime prompt": "datetime", "add date time prompt": "datetime",
    # location
    "geopoint": "geopoint", "gps": "geopoint", "location": "geopoint", "q location": "geopoint",
    "q geopoint": "geopoint", "add location prompt": "geopoint",
    # media
    "image": "image", "photo": "image", "q picture": "image", "q image": "image",
    "add image prompt": "image", "add photo prompt": "image",
    "audio": "audio", "q audio": "audio", "add audio prompt": "audio",
    "video": "video", "q video": "video", "add video prompt": "video",
    "file": "file", "add file prompt": "file",
    # silent
    "calculate": "calculate", "q calculate": "calculate", "add calculate prompt": "calculate",
    "hidden": "hidden",
}

#: Metadata type spellings -> the canonical metadata type (`questionnaires.model.METADATA_TYPES`).
METADATA_ALIASES: dict[str, str] = {
    "start": "start", "start time": "start", "get start time": "start",
    "end": "end", "end time": "end", "get end time": "end",
    "today": "today", "get today": "today",
    "deviceid": "deviceid", "device id": "deviceid", "get device id": "deviceid", "imei": "deviceid",
    "uri:deviceid": "deviceid",
    "username": "username", "uri:username": "username",
    "audit": "audit",
    "subscriberid": "subscriberid", "subscriber id": "subscriberid", "get subscriber id": "subscriberid",
    "uri:subscriberid": "subscriberid",
    "simserial": "simserial", "sim id": "simserial", "get sim id": "simserial", "uri:simserial": "simserial",
    "phonenumber": "phonenumber", "get phone number": "phonenumber", "uri:phonenumber": "phonenumber",
    "email": "email", "uri:email": "email",
    # Recorded by the caller when it can (a location the user shared, a voice note); never asked.
    "start-geopoint": "start-geopoint",
    "background-audio": "background-audio",
}

_GEO = (
    "Suara records single points only: use geopoint questions (for example one per corner) or an "
    "image question with a photo of a sketch map."
)
_SILENT_LOCATION = (
    "Telegram never shares a location without the user pressing a button: add a geopoint question "
    "(\"Share your location\") where you need it."
)
_EXTERNAL = (
    "Put the list on the choices sheet (with a choice_filter column if it is filtered), or use "
    "select_one_from_file with a CSV file next to the form."
)

#: Types Suara refuses, with what to use instead. Keys are compared exactly and lower-cased.
UNSUPPORTED_TYPES: dict[str, str] = {
    "barcode": "Telegram cannot scan barcodes: use a text question (the code typed in) or an image "
    "question (a photo of the code).",
    "q barcode": "Telegram cannot scan barcodes: use a text question or an image question.",
    "add barcode prompt": "Telegram cannot scan barcodes: use a text question or an image question.",
    "geotrace": _GEO, "q geotrace": _GEO,
    "geoshape": _GEO, "q geoshape": _GEO,
    "osm": "OpenStreetMap widgets are not supported: use a geopoint question plus select_one questions "
    "for the feature's attributes.",
    "select one external": _EXTERNAL,
    "select_one_external": _EXTERNAL,
    "xml-external": "External XML data is not supported. " + _EXTERNAL,
    "csv-external": "External CSV data is not supported. " + _EXTERNAL,
    "background-geopoint": _SILENT_LOCATION,
    "number of days in last month": "Use an integer question with a constraint instead.",
    "number of days in last six months": "Use an integer question with a constraint instead.",
    "number of days in last year": "Use an integer question with a constraint instead.",
    "percentage": "Use an integer question with constraint . >= 0 and . <= 100 instead.",
    "phone number": "Use a text question with a regex() constraint instead.",
}

#: ISO 639-1 codes for language names commonly written without a code in ``label::<Language>``.
LANGUAGE_NAME_CODES: dict[str, str] = {
    "english": "en",
    "indonesian": "id",
    "bahasa indonesia": "id",
    "bahasa": "id",
    "french": "fr",
    "français": "fr",
    "swahili": "sw",
    "kiswahili": "sw",
    "nepali": "ne",
    "spanish": "es",
    "español": "es",
    "chinese": "zh",
    "portuguese": "pt",
    "português": "pt",
    "arabic": "ar",
}

_CODE_IN_NAME = re.compile(r"^(?P<name>.*?)\s*\((?P<code>[^()]+)\)\s*$")


def normalise_type(raw: str) -> str | None:
    """The Suara question type for a survey-sheet ``type`` (no list name), or ``None`` if not a question.

    ``"dateTime"`` -> ``"datetime"``, ``"int"`` -> ``"integer"``, ``"trigger"`` -> ``"acknowledge"``.
    """
    return TYPE_ALIASES.get(raw) or TYPE_ALIASES.get(raw.lower())


def metadata_type(raw: str) -> str | None:
    """The canonical metadata type for ``raw`` (``"start time"`` -> ``"start"``), or ``None``."""
    return METADATA_ALIASES.get(raw) or METADATA_ALIASES.get(raw.lower())


def unsupported_reason(raw: str) -> str | None:
    """What to use instead of the unsupported type ``raw``, or ``None`` if ``raw`` is not listed."""
    return UNSUPPORTED_TYPES.get(raw) or UNSUPPORTED_TYPES.get(raw.lower())


def language_code(header_language: str) -> str:
    """The language code for the language part of a column header (``label::<this>``).

    ``"Indonesian (id)"`` -> ``"id"``; ``"english(en)"`` -> ``"en"``; ``"English"`` -> ``"en"``;
    ``"EN"`` -> ``"en"`` (a bare two-letter code); ``"default"`` -> ``"default"``; any other name is kept
    as written (``"Jambi Malay"``). Source: XLSForm spec, "Multiple language support" and
    questionnaires.model's rules.
    """
    text = header_language.strip()
    m = _CODE_IN_NAME.match(text)
    if m and m.group("code").strip():
        return m.group("code").strip().lower()
    known = LANGUAGE_NAME_CODES.get(text.lower())
    if known:
        return known
    if len(text) == 2 and text.isalpha() and text.isascii():
        return text.lower()
    return text


def language_name(header_language: str) -> str:
    """The human name in a header's language part: ``"Indonesian (id)"`` -> ``"Indonesian"``."""
    text = header_language.strip()
    m = _CODE_IN_NAME.match(text)
    if m and m.group("name").strip():
        return m.group("name").strip()
    return text
