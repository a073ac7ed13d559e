#!/usr/bin/env python3
"""Generates the integrator's reference (docs/schemas.md) from the Sluice XSDs.

Usage: python3 schemas/tools/gen_docs.py SCHEMAS_DIR OUTPUT.md

Reads every SCHEMAS_DIR/*.xsd (python3 stdlib only, xml.etree.ElementTree) and the
valid samples SCHEMAS_DIR/examples/<doctype>/valid-1.xml, and writes one Markdown file.
The output depends only on those inputs (no dates, no environment, stable ordering),
so CI can regenerate it and diff against the committed file.

What it relies on in the schemas (see schemas/README.md):
  - xs:documentation xml:lang="zh" / xml:lang="en" on every element and named type;
  - xs:appinfo source="urn:sluice:pinyin" for the column code, where one exists;
  - xs:appinfo source="urn:sluice:doctype" naming the DocType of each body element;
  - xs:documentation source="urn:sluice:rule" for checks the gateway makes beyond XSD;
  - the cm:DocType enumeration in common-1.xsd for the order of the DocType sections.
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET

XSD_NS = "http://www.w3.org/2001/XMLSchema"
XS = "{%s}" % XSD_NS
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
COMMON_NS = "urn:sluice:xs:common:1"
ENVELOPE_NS = "urn:sluice:xs:envelope:1"


class Schema:
    """One parsed XSD file with its prefix map and top-level components."""

    def __init__(self, path):
        self.path = path
        self.file = os.path.basename(path)
        self.prefixes = {}
        for _event, (prefix, uri) in ET.iterparse(path, events=("start-ns",)):
            self.prefixes.setdefault(prefix, uri)
        self.root = ET.parse(path).getroot()
        self.tns = self.root.get("targetNamespace")

    def resolve(self, qname):
        """'cm:RegionCode' -> (namespace, local)."""
        if ":" in qname:
            prefix, localname = qname.split(":", 1)
        else:
            prefix, localname = "", qname
        return self.prefixes.get(prefix), localname


class Registry:
    """All components of all schemas, keyed by (kind, namespace, name)."""

    def __init__(self, schemas_dir):
        self.schemas = [Schema(p) for p in sorted(glob.glob(os.path.join(schemas_dir, "*.xsd")))]
        self.components = {}
        self.ns_prefix = {DSIG_NS: "ds", XSD_NS: "xs"}
        for schema in self.schemas:
            for prefix, uri in sorted(schema.prefixes.items()):
                if uri == schema.tns and prefix:
                    self.ns_prefix.setdefault(uri, prefix)
        for schema in self.schemas:
            for prefix, uri in sorted(schema.prefixes.items()):
                if prefix:
                    self.ns_prefix.setdefault(uri, prefix)
            for node in schema.root:
                kind = node.tag[len(XS):] if node.tag.startswith(XS) else None
                if kind in ("element", "simpleType", "complexType", "group", "attributeGroup"):
                    self.components[(kind, schema.tns, node.get("name"))] = (node, schema)

    def get(self, kind, ns, name):
        return self.components.get((kind, ns, name))

    def qname(self, ns, name):
        prefix = self.ns_prefix.get(ns)
        return "%s:%s" % (prefix, name) if prefix else name


# ------------------------------------------------------------------ annotations

def annotation(node):
    """(zh, en, pinyin, rules, doctype) from a component's xs:annotation."""
    zh = en = pinyin = doctype = ""
    rules = []
    ann = node.find(XS + "annotation")
    if ann is None:
        return zh, en, pinyin, rules, doctype
    for child in ann:
        text = " ".join((child.text or "").split())
        if child.tag == XS + "documentation":
            if child.get("source") == "urn:sluice:rule":
                rules.append(text)
            elif child.get(XML_LANG) == "zh" and not zh:
                zh = text
            elif child.get(XML_LANG) == "en" and not en:
                en = text
        elif child.tag == XS + "appinfo":
            if child.get("source") == "urn:sluice:pinyin":
                pinyin = text
            elif child.get("source") == "urn:sluice:doctype":
                doctype = text
    return zh, en, pinyin, rules, doctype


# ------------------------------------------------------------------ simple types

def facets_of(reg, node, schema, rules):
    """Walks a simpleType (or restriction chain) and returns (builtin base, facets list)."""
    facets = []
    restriction = node.find(XS + "restriction")
    if restriction is None:
        return "xs:anySimpleType", facets
    base = restriction.get("base")
    builtin = None
    if base:
        ns, name = schema.resolve(base)
        if ns == XSD_NS:
            builtin = "xs:" + name
        else:
            found = reg.get("simpleType", ns, name)
            if found:
                rules.extend(annotation(found[0])[3])
                builtin, inherited = facets_of(reg, found[0], found[1], rules)
                facets.extend(inherited)
    else:
        inline = restriction.find(XS + "simpleType")
        if inline is not None:
            builtin, inherited = facets_of(reg, inline, schema, rules)
            facets.extend(inherited)
    for facet in restriction:
        if facet.tag.startswith(XS) and facet.tag != XS + "annotation" and facet.tag != XS + "simpleType":
            facets.append((facet.tag[len(XS):], facet.get("value")))
    return builtin or "xs:anySimpleType", facets


def describe_facets(facets, builtin):
    """Human-readable constraint text from a facet list."""
    parts = []
    enums = [v for k, v in facets if k == "enumeration"]
    if enums:
        parts.append("one of: " + ", ".join("`%s`" % v for v in enums))
    for kind, value in facets:
        if kind == "pattern":
            parts.append("pattern `%s`" % value)
    values = {}
    for kind, value in facets:
        if kind != "pattern" and kind != "enumeration":
            values[kind] = value  # later (more derived) facets win
    unit = " bytes" if builtin in ("xs:hexBinary", "xs:base64Binary") else " chars"
    if "length" in values:
        parts.append("length %s%s" % (values["length"], unit))
    if "minLength" in values or "maxLength" in values:
        parts.append("length %s..%s%s" % (values.get("minLength", "0"),
                                          values.get("maxLength", "∞"), unit))
    low = values.get("minInclusive", values.get("minExclusive"))
    high = values.get("maxInclusive", values.get("maxExclusive"))
    if builtin == "xs:nonNegativeInteger" and low is None:
        low = "0"
    if low is not None or high is not None:
        parts.append("range %s..%s" % (low if low is not None else "−∞",
                                       high if high is not None else "∞"))
    if "fractionDigits" in values:
        parts.append("≤ %s decimals" % values["fractionDigits"])
    if "totalDigits" in values:
        parts.append("≤ %s digits" % values["totalDigits"])
    return "; ".join(parts)


# ------------------------------------------------------------------ content walk

class Row:
    def __init__(self, path, type_text, occurs, constraints, zh, pinyin, en):
        self.path, self.type_text, self.occurs = path, type_text, occurs
        self.constraints, self.zh, self.pinyin, self.en = constraints, zh, pinyin, en


def occurs_text(node, note=""):
    low = node.get("minOccurs", "1")
    high = node.get("maxOccurs", "1")
    if low == high:
        text = low
    else:
        text = "%s..%s" % (low, high)
    text = {"1": "1 (required)", "0..1": "0..1 (optional)"}.get(text, text)
    return text + note


class Walker:
    def __init__(self, reg):
        self.reg = reg
        self.rows = []
        self.rules = []

    def add_rules(self, rules):
        for rule in rules:
            if rule not in self.rules:
                self.rules.append(rule)

    def simple(self, type_node, schema, type_label):
        rules = []
        builtin, facets = facets_of(self.reg, type_node, schema, rules)
        self.add_rules(rules)
        label = type_label if type_label else builtin
        if type_label and type_label != builtin:
            label = "%s (%s)" % (type_label, builtin)
        return label, describe_facets(facets, builtin)

    def element(self, el, schema, parent_path, note=""):
        if el.get("ref"):
            ns, name = schema.resolve(el.get("ref"))
            found = self.reg.get("element", ns, name)
            decl, decl_schema = found
            qualified = self.reg.qname(ns, name)
        else:
            decl, decl_schema = el, schema
            qualified = self.reg.qname(schema.tns, el.get("name"))
        path = parent_path + "/" + qualified if parent_path else qualified
        zh, en, pinyin, rules, _ = annotation(decl)
        self.add_rules(rules)
        type_text, constraints, complex_node, complex_schema = "", "", None, None
        type_attr = decl.get("type")
        if type_attr:
            ns, name = decl_schema.resolve(type_attr)
            if ns == XSD_NS:
                type_text = "xs:" + name
                if name == "boolean":
                    constraints = "`true`/`false` (or `1`/`0`)"
            elif self.reg.get("simpleType", ns, name):
                node, node_schema = self.reg.get("simpleType", ns, name)
                self.add_rules(annotation(node)[3])
                type_text, constraints = self.simple(node, node_schema, self.reg.qname(ns, name))
                tzh, ten, _, _, _ = annotation(node)
                zh, en = zh or tzh, en or ten  # the column code is never inherited from a type
            elif self.reg.get("complexType", ns, name):
                complex_node, complex_schema = self.reg.get("complexType", ns, name)
                self.add_rules(annotation(complex_node)[3])
                type_text = self.reg.qname(ns, name)
        else:
            inline_simple = decl.find(XS + "simpleType")
            inline_complex = decl.find(XS + "complexType")
            if inline_simple is not None:
                type_text, constraints = self.simple(inline_simple, decl_schema, None)
            elif inline_complex is not None:
                complex_node, complex_schema = inline_complex, decl_schema
                type_text = "(complex)"
        if decl.get("fixed") is not None:
            constraints = ("fixed `%s`; " % decl.get("fixed")) + constraints
        row = Row(path, type_text, occurs_text(el, note), constraints, zh, pinyin, en)
        self.rows.append(row)
        if complex_node is not None:
            self.complex(complex_node, complex_schema, path, row)

    def complex(self, node, schema, path, row):
        simple_content = node.find(XS + "simpleContent")
        if simple_content is not None:
            ext = simple_content.find(XS + "extension")
            ns, name = schema.resolve(ext.get("base"))
            if ns == XSD_NS:
                row.type_text += " of xs:" + name
            else:
                base, base_schema = self.reg.get("simpleType", ns, name)
                label, constraints = self.simple(base, base_schema, self.reg.qname(ns, name))
                row.type_text += " of " + label
                row.constraints = constraints
            self.attributes(ext, schema, path)
            return
        for child in node:
            if child.tag in (XS + "sequence", XS + "choice", XS + "group", XS + "all"):
                self.particle(child, schema, path)
        self.attributes(node, schema, path)

    def attributes(self, node, schema, path):
        for child in node:
            if child.tag == XS + "attribute":
                self.attribute(child, schema, path)
            elif child.tag == XS + "attributeGroup":
                ns, name = schema.resolve(child.get("ref"))
                group, group_schema = self.reg.get("attributeGroup", ns, name)
                self.attributes(group, group_schema, path)

    def attribute(self, attr, schema, path):
        zh, en, pinyin, rules, _ = annotation(attr)
        self.add_rules(rules)
        ns, name = schema.resolve(attr.get("type", "xs:anySimpleType"))
        type_text = "xs:" + name if ns == XSD_NS else self.reg.qname(ns, name)
        constraints = ""
        if attr.get("fixed") is not None:
            constraints = "fixed `%s`" % attr.get("fixed")
        occurs = "1 (required)" if attr.get("use") == "required" else "0..1 (optional)"
        self.rows.append(Row(path + "/@" + attr.get("name"), type_text, occurs, constraints,
                             zh, pinyin, en))

    def particle(self, node, schema, path, note=""):
        if node.tag == XS + "element":
            self.element(node, schema, path, note)
        elif node.tag == XS + "group":
            ns, name = schema.resolve(node.get("ref"))
            group, group_schema = self.reg.get("group", ns, name)
            self.add_rules(annotation(group)[3])
            for child in group:
                if child.tag in (XS + "sequence", XS + "choice", XS + "all"):
                    self.particle(child, group_schema, path, note)
        elif node.tag in (XS + "sequence", XS + "all"):
            for child in node:
                self.particle(child, schema, path, note)
        elif node.tag == XS + "choice":
            branches = [c for c in node if c.tag != XS + "annotation"]
            for index, child in enumerate(branches):
                label = "%s; choice %s of %d" % (note, chr(ord("A") + index), len(branches))
                self.particle(child, schema, path, label)
        elif node.tag == XS + "any":
            namespaces = node.get("namespace", "##any").split()
            prefixes = sorted(self.reg.ns_prefix.get(ns, ns) for ns in namespaces)
            skip = node.get("processContents", "strict") == "skip"
            if namespaces == [DSIG_NS]:
                label = "ds:Signature"
                en = "XML-DSig signature; its structure is verified by the gateway, not by XSD."
                zh = "数字签名"
            else:
                label = "(" + " \\| ".join(p + ":*" for p in prefixes) + ")"
                en = "Any global element of these namespaces, validated %s." % (
                    "not at all" if skip else "strictly against its schema")
                zh = ""
            self.rows.append(Row(path + "/" + label if path else label,
                                 "any (%s)" % node.get("processContents", "strict"),
                                 occurs_text(node, note), "", zh, "", en))


# ------------------------------------------------------------------ markdown

def cell(text):
    return (text or "").replace("|", "\\|").replace("\n", " ") or " "


def table(rows):
    out = ["| Path | Type | Occurs | Constraints | 中文 | Code | Description |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append("| `%s` | %s | %s | %s | %s | %s | %s |" % (
            r.path, cell(r.type_text), cell(r.occurs), cell(r.constraints), cell(r.zh),
            cell("`%s`" % r.pinyin if r.pinyin else ""), cell(r.en)))
    return "\n".join(out)


def read_sample(schemas_dir, doctype):
    path = os.path.join(schemas_dir, "examples", doctype, "valid-1.xml")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read().rstrip("\n")


def doctype_order(reg):
    found = reg.get("simpleType", COMMON_NS, "DocType")
    node = found[0]
    return [e.get("value") for e in node.iter(XS + "enumeration")]


def body_elements(reg):
    """DocType -> (element node, schema)."""
    result = {}
    for schema in reg.schemas:
        for node in schema.root.findall(XS + "element"):
            doctype = annotation(node)[4]
            if doctype:
                result[doctype] = (node, schema)
    return result


def generate(schemas_dir):
    reg = Registry(schemas_dir)
    out = []
    w = out.append
    w("# Sluice exchange schemas, version 1")
    w("")
    w("<!-- Generated by schemas/tools/gen_docs.py from schemas/*.xsd and "
      "schemas/examples/*/valid-1.xml. Do not edit by hand: edit the schemas and rerun "
      "`python3 schemas/tools/gen_docs.py schemas docs/schemas.md`. -->")
    w("")
    w("This is the reference for a department system integrator who sends documents to, or "
      "receives documents from, a Sluice gateway. Every message is an `env:Envelope` holding "
      "exactly one business document in `env:Body`; the gateway validates it against "
      "`schemas/envelope-1.xsd` (which imports all other schemas) and then makes the extra "
      "checks listed under each document. A document that fails either is rejected with a "
      "receipt naming the field at fault.")
    w("")
    w("## Namespaces and files")
    w("")
    w("| Prefix | Namespace | File | Content |")
    w("|---|---|---|---|")
    for schema in reg.schemas:
        zh, en, _, _, _ = annotation(schema.root)
        w("| `%s` | `%s` | `schemas/%s` | %s |" % (reg.ns_prefix.get(schema.tns, ""), schema.tns,
                                                  schema.file, cell(en + (" " + zh if zh else ""))))
    w("| `ds` | `%s` | (W3C, not imported) | XML-DSig signatures; skipped by XSD, verified by the gateway. |" % DSIG_NS)
    w("")
    w("The prefixes are conventions used in this document and the examples; any prefix bound "
      "to the right namespace works. All schemas use `elementFormDefault=\"qualified\"`: an "
      "element belongs to the namespace of the schema that declares it. Children of the shared "
      "types of `common-1.xsd` (for example `Sender/Node`, `Department/Code`, `Applicant/Name`, "
      "`Material/Copies`) are therefore in the `cm` namespace, while the element that uses the "
      "type (`env:Sender`, `case:Department`, `case:Applicant`, `case:Material`) is in the "
      "document's namespace. Attributes (`Id`, `Algorithm`) are unqualified.")
    w("")
    w("## Conventions")
    w("")
    w("- **Encoding**: UTF-8, no DOCTYPE (documents with a DOCTYPE are refused), no external "
      "entities.")
    w("- **Times** are `xs:dateTime` with a mandatory offset, normally Beijing time: "
      "`2026-11-20T09:30:00+08:00` (`Z` is accepted; a time without offset is invalid). "
      "Statistics periods use a plain date (`2026-10-01`) meaning Beijing time.")
    w("- **Durations** in working days are non-negative integers (0..3650).")
    w("- **Money** is in yuan, `xs:decimal` with at most two fraction digits, never negative: "
      "`80.00`, `550.5`.")
    w("- **Code lists** are enumerations with the Chinese values exactly as listed (no "
      "surrounding text, no synonyms). Statistics periods are `月`, `季`, `年`.")
    w("- **Text** is bounded: names ≤ 200 characters, short texts ≤ 1000, opinions and "
      "contents ≤ 4000 (characters, not bytes); lists are bounded too (e.g. ≤ 200 materials).")
    w("- **Identifiers with check characters** must be real: the unified social credit code "
      "(GB 32100) and the resident identity card number (GB 11643, ISO 7064 MOD 11-2, `X` as "
      "last character allowed) are checked by the gateway beyond their XSD shape. Region codes "
      "are 6 digits (GB/T 2260), mobiles 11 digits starting 13-19.")
    w("- **Personal data** (ID numbers, mobiles) is never echoed in clear in receipts or logs; "
      "it is masked like `4406**********1231`.")
    w("- **Signatures**: a body element may carry `Id` and end with the sender's own "
      "`ds:Signature` (`Reference URI=\"#Id\"`); the gateways append their enveloped "
      "signatures after `env:Body` (at most two signatures there).")
    w("- **Column codes**: where department systems commonly use a pinyin-initials column name "
      "(申办流水号 = `SBLSH`), it is given in the Code column below, so that adapters can map "
      "such columns by configuration.")
    w("")

    # Envelope
    envelope = reg.get("element", ENVELOPE_NS, "Envelope")
    walker = Walker(reg)
    walker.element(envelope[0], envelope[1], "")
    w("## The envelope (`env:Envelope`)")
    w("")
    zh, en, _, rules, _ = annotation(envelope[0])
    w("%s — %s" % (zh, en))
    w("")
    rows = walker.rows[1:]  # the envelope element itself is the heading
    for row in rows:
        row.path = row.path[len("env:Envelope") + 1:]
    w(table(rows))
    w("")
    w("Checks the gateway makes beyond XSD:")
    w("")
    for rule in walker.rules:
        w("- " + rule)
    w("")
    w("DocType → Body element:")
    w("")
    w("| DocType | 中文 | Body element | Namespace |")
    w("|---|---|---|---|")
    bodies = body_elements(reg)
    order = doctype_order(reg)
    for doctype in order:
        node, schema = bodies[doctype]
        w("| `%s` | %s | `%s` | `%s` |" % (doctype, annotation(node)[0],
                                           reg.qname(schema.tns, node.get("name")), schema.tns))
    w("")

    # Documents
    w("## Documents")
    w("")
    for doctype in order:
        node, schema = bodies[doctype]
        zh, en, _, _, _ = annotation(node)
        qualified = reg.qname(schema.tns, node.get("name"))
        walker = Walker(reg)
        walker.element(node, schema, "")
        rows = walker.rows[1:]  # the document element itself is the heading
        for row in rows:
            row.path = row.path[len(qualified) + 1:]
        w("### `%s` — %s" % (doctype, zh))
        w("")
        w("Element `%s` in `%s` (`schemas/%s`). %s" % (qualified, schema.tns, schema.file, en))
        w("")
        w(table(rows))
        w("")
        w("Checks the gateway makes beyond XSD:")
        w("")
        doc_rules = ["R-DOCTYPE-BODY: in an envelope, DocType must be `%s`." % doctype] + walker.rules
        for rule in doc_rules:
            w("- " + rule)
        w("")
        sample = read_sample(schemas_dir, doctype)
        if sample is not None:
            w("Sample (`schemas/examples/%s/valid-1.xml`):" % doctype)
            w("")
            w("```xml")
            w(sample)
            w("```")
            w("")

    # Shared types
    w("## Shared simple types (`cm`)")
    w("")
    w("| Type | Base | Constraints | 中文 | Code | Description |")
    w("|---|---|---|---|---|---|")
    for schema in reg.schemas:
        if schema.tns != COMMON_NS:
            continue
        for node in schema.root.findall(XS + "simpleType"):
            zh, en, pinyin, _, _ = annotation(node)
            builtin, facets = facets_of(reg, node, schema, [])
            w("| `cm:%s` | %s | %s | %s | %s | %s |" % (
                node.get("name"), builtin, cell(describe_facets(facets, builtin)), cell(zh),
                cell("`%s`" % pinyin if pinyin else ""), cell(en)))
    w("")

    # Column code index
    w("## Column code index")
    w("")
    w("Pinyin-initials column codes used in the schemas, with where they appear.")
    w("")
    index = {}  # code -> (terms, {local path: [doctypes]})
    for doctype in order:
        node, schema = bodies[doctype]
        walker = Walker(reg)
        walker.element(node, schema, "")
        for row in walker.rows:
            if row.pinyin:
                terms, paths = index.setdefault(row.pinyin, ([], {}))
                if row.zh not in terms:
                    terms.append(row.zh)
                steps = [step.split(":", 1)[-1] for step in row.path.split("/")[1:]]
                paths.setdefault("/".join(steps), []).append(doctype)
    case_doctypes = [d for d in order if d.startswith("case.")]
    w("| Code | 中文 | Used in (element path within the document: DocTypes) |")
    w("|---|---|---|")
    for code in sorted(index):
        terms, paths = index[code]
        uses = []
        for path, doctypes in paths.items():
            if all(d in doctypes for d in case_doctypes):
                doctypes = ["case.*"] + [d for d in doctypes if d not in case_doctypes]
            uses.append("`%s`: %s" % (path, ", ".join(doctypes)))
        w("| `%s` | %s | %s |" % (code, cell(" / ".join(terms)), cell("; ".join(uses))))
    w("")
    return "\n".join(out)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: gen_docs.py SCHEMAS_DIR OUTPUT.md\n")
        return 2
    text = generate(argv[1])
    with open(argv[2], "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
