#!/usr/bin/env python3
"""Reference implementation of the checks XSD cannot make (python3 stdlib only).

The gateway implements these rules in C++; this script exists so that the examples
in schemas/examples can be verified against the same rules in CI, and as an
executable statement of each rule. It assumes the file is already XSD-valid.

Usage: semantic_check.py SCHEMAS_DIR FILE...
Prints one line per violation: FILE<TAB>FIELD<TAB>RULE<TAB>MESSAGE.
Exit status: 0 when no file violates a rule, 1 when any does, 2 on usage errors.

Rules (ids as in the xs:documentation source="urn:sluice:rule" of the schemas):
  R-DOCTYPE-BODY  Envelope DocType names the Body element (from urn:sluice:doctype appinfo).
  R-IDCARD-CHECK  IdNumber with IdType 居民身份证: GB 11643 ISO 7064 MOD 11-2.
  R-CREDIT-CHECK  CreditCode, Department/Code, TargetDepartment/Code: GB 32100.
  R-SPECIAL-ORDER StartAt <= EndAt.
  R-CERT-VALIDITY Certificate/ValidUntil >= ConcludedAt.
  R-DAYS-ORDER    PromisedDays <= LegalDays.
  R-FEE-SUM       ChargedAmount + ReductionAmount == StandardAmount.
"""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from decimal import Decimal

XS = "{http://www.w3.org/2001/XMLSchema}"
CM = "urn:sluice:xs:common:1"
ENV = "urn:sluice:xs:envelope:1"

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"

DATETIME_RE = re.compile(
    r"^(-?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+\-]\d{2}:\d{2})$")


def credit_code_ok(code):
    if len(code) != 18 or any(ch not in CREDIT_ALPHABET for ch in code):
        return False
    total = sum(CREDIT_ALPHABET.index(ch) * w for ch, w in zip(code[:17], CREDIT_WEIGHTS))
    check = 31 - total % 31
    return code[17] == CREDIT_ALPHABET[0 if check == 31 else check]


def id_number_ok(number):
    if not re.fullmatch(r"[0-9]{17}[0-9X]", number):
        return False
    total = sum(int(ch) * w for ch, w in zip(number[:17], ID_WEIGHTS))
    return number[17] == ID_CHECK[total % 11]


def parse_datetime(text):
    """xs:dateTime with offset -> (aware datetime, fraction) for comparison."""
    m = DATETIME_RE.match(text.strip())
    if not m:
        raise ValueError("not a dateTime with offset: %r" % text)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction = Decimal(m.group(7) or "0")
    tz = m.group(8)
    offset = timedelta(0) if tz == "Z" else (
        (1 if tz[0] == "+" else -1) * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    extra = timedelta(0)
    if hour == 24:  # xs:dateTime allows 24:00:00 as the end of the day
        hour, extra = 0, timedelta(days=1)
    value = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset)) + extra
    return (value.astimezone(timezone.utc), fraction)


def doctype_map(schemas_dir):
    """DocType -> Clark name of its body element, from urn:sluice:doctype appinfo."""
    mapping = {}
    for path in sorted(glob.glob(os.path.join(schemas_dir, "*.xsd"))):
        root = ET.parse(path).getroot()
        tns = root.get("targetNamespace")
        for el in root.findall(XS + "element"):
            for info in el.findall(XS + "annotation/" + XS + "appinfo"):
                if info.get("source") == "urn:sluice:doctype":
                    mapping[info.text.strip()] = "{%s}%s" % (tns, el.get("name"))
    return mapping


def local(tag):
    return tag.rsplit("}", 1)[-1]


def child(parent, name):
    """First child with this local name (any namespace), or None."""
    for c in parent:
        if local(c.tag) == name:
            return c
    return None


def check(root, mapping):
    """Yields (field, rule, message) for every violation in the document."""
    if root.tag == "{%s}Envelope" % ENV:
        doctype = (child(root, "DocType").text or "").strip()
        body = child(root, "Body")
        docs = [c for c in body] if body is not None else []
        expected = mapping.get(doctype)
        if not docs or docs[0].tag != expected:
            yield ("DocType", "R-DOCTYPE-BODY",
                   "DocType %s requires %s, Body holds %s"
                   % (doctype, expected, docs[0].tag if docs else "nothing"))

    parents = {c: p for p in root.iter() for c in p}
    for el in root.iter():
        name = local(el.tag)
        text = (el.text or "").strip()
        if name == "IdNumber" and el.tag == "{%s}IdNumber" % CM:
            id_type = child(parents[el], "IdType")
            if id_type is not None and (id_type.text or "").strip() == "居民身份证":
                if not id_number_ok(text):
                    yield ("IdNumber", "R-IDCARD-CHECK", "resident ID check character is wrong")
        elif el.tag == "{%s}CreditCode" % CM or (
                el.tag == "{%s}Code" % CM
                and local(parents[el].tag) in ("Department", "TargetDepartment")):
            if not credit_code_ok(text):
                yield (name, "R-CREDIT-CHECK", "credit code check character is wrong")

    for el in root.iter():
        name = local(el.tag)
        if name == "CaseSpecialProcedure":
            start, end = child(el, "StartAt"), child(el, "EndAt")
            if start is not None and end is not None:
                if parse_datetime(start.text) > parse_datetime(end.text):
                    yield ("EndAt", "R-SPECIAL-ORDER", "EndAt is earlier than StartAt")
        elif name == "CaseConclude":
            cert, concluded = child(el, "Certificate"), child(el, "ConcludedAt")
            until = child(cert, "ValidUntil") if cert is not None else None
            if until is not None and parse_datetime(until.text) < parse_datetime(concluded.text):
                yield ("ValidUntil", "R-CERT-VALIDITY", "ValidUntil is earlier than ConcludedAt")
        elif name in ("CaseRegister", "CatalogItem"):
            legal, promised = child(el, "LegalDays"), child(el, "PromisedDays")
            if int(promised.text) > int(legal.text):
                yield ("PromisedDays", "R-DAYS-ORDER", "PromisedDays exceeds LegalDays")
        elif name == "CaseFee":
            std, charged, reduction = (Decimal(child(el, n).text.strip()) for n in
                                       ("StandardAmount", "ChargedAmount", "ReductionAmount"))
            if charged + reduction != std:
                yield ("ChargedAmount", "R-FEE-SUM",
                       "ChargedAmount + ReductionAmount = %s, StandardAmount = %s"
                       % (charged + reduction, std))


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    mapping = doctype_map(argv[1])
    bad = False
    for path in argv[2:]:
        root = ET.parse(path).getroot()
        for field, rule, message in check(root, mapping):
            bad = True
            print("%s\t%s\t%s\t%s" % (path, field, rule, message))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
