#!/usr/bin/env python3
# TEMPORARY generator for schemas/examples (removed after generation).
import os, hashlib, base64, shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")

A = "0123456789ABCDEFGHJKLMNPQRTUWXY"
W = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
def cc(s17):
    c = 31 - sum(A.index(ch) * w for ch, w in zip(s17, W)) % 31
    return s17 + A[0 if c == 31 else c]
def org(s8):
    ow = [3, 7, 9, 10, 5, 8, 4, 2]
    v = lambda ch: int(ch) if ch.isdigit() else ord(ch) - 55
    c = 11 - sum(v(ch) * w for ch, w in zip(s8, ow)) % 11
    return s8 + ("X" if c == 10 else "0" if c == 11 else str(c))
def idn(s17):
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return s17 + "10X98765432"[sum(int(a) * b for a, b in zip(s17, w)) % 11]
def wrong_last(code, alphabet):
    last = code[-1]
    alt = alphabet[(alphabet.index(last) + 1) % len(alphabet)]
    return code[:-1] + alt

SCJG = cc("11440604" + org("MB2D7654"))     # 佛山市禅城区市场监督管理局
ZJJ = cc("11440604" + org("MB2C1187"))      # 佛山市禅城区住房城乡建设和水利局
CY = cc("91440604" + org("MA4WKD3N"))       # 佛山市禅城区味道餐饮管理有限公司
SJ_SCJG = cc("11440600" + org("007024T2"))  # 佛山市市场监督管理局
BDC = cc("11440604" + org("MB2C0921"))      # 佛山市禅城区不动产登记中心
KJ = cc("91440604" + org("MA55H7QY"))       # 佛山市禅城区启航科技有限公司
ID1 = idn("44060419850312123")               # 张伟
ID2 = idn("11010119900715002")               # 陈静
ID3 = idn("44060219920408452")               # 刘洋
BAD_ID1 = wrong_last(ID1, "0123456789X")
BAD_CY = wrong_last(CY, A)
BAD_SCJG = wrong_last(SCJG, A)
BAD_KJ = wrong_last(KJ, A)

NS = {
    "case": "urn:sluice:xs:case:1", "pub": "urn:sluice:xs:public:1",
    "cat": "urn:sluice:xs:catalog:1", "st": "urn:sluice:xs:stats:1",
    "fb": "urn:sluice:xs:feedback:1", "rc": "urn:sluice:xs:receipt:1",
}

def envelope(doctype, smid, sender, receiver, created, body, pfx, head_extra="", after_docversion="", pre=""):
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="urn:sluice:xs:envelope:1" xmlns:cm="urn:sluice:xs:common:1" xmlns:{pfx}="{NS[pfx]}">
{pre}  <env:SenderMessageId>{smid}</env:SenderMessageId>
  <env:Sender>
    <cm:Node>{sender[0]}</cm:Node>
    <cm:System>{sender[1]}</cm:System>
  </env:Sender>
  <env:Receiver>
    <cm:Node>{receiver[0]}</cm:Node>
    <cm:System>{receiver[1]}</cm:System>
  </env:Receiver>
  <env:DocType>{doctype}</env:DocType>
  <env:DocVersion>1</env:DocVersion>
{after_docversion}  <env:Created>{created}</env:Created>
{head_extra}  <env:Body>
{body}  </env:Body>
</env:Envelope>
'''

APPROVAL = ("440604", "approval")
SUPERVISION = ("440600", "supervision")

def case_header(caseid="44060420261120000123", item="440604-SCJG-XK-0012", dept=None, occurred="2026-11-20T09:25:00+08:00"):
    code, name = dept or (SCJG, "佛山市禅城区市场监督管理局")
    return f'''      <case:CaseId>{caseid}</case:CaseId>
      <case:ItemCode>{item}</case:ItemCode>
      <case:Department>
        <cm:Code>{code}</cm:Code>
        <cm:Name>{name}</cm:Name>
      </case:Department>
      <case:Region>440604</case:Region>
      <case:OccurredAt>{occurred}</case:OccurredAt>
'''

def case_doc(elem, inner, attrs=""):
    return f"    <case:{elem}{attrs}>\n{inner}    </case:{elem}>\n"

def handler(p, hid, name, post):
    return f'''      <{p}:Handler>
        <cm:Id>{hid}</cm:Id>
        <cm:Name>{name}</cm:Name>
        <cm:Post>{post}</cm:Post>
      </{p}:Handler>
'''

docs = {}    # doctype -> list of (filename, text)
expect = []  # (path, expect, field, reason)

def valid(doctype, name, text, reason):
    docs.setdefault(doctype, []).append((name, text))
    expect.append((f"{doctype}/{name}", "valid", "-", reason))

def invalid(doctype, slug, base, subs, kind, field, reason):
    text = base
    for old, new in subs:
        n = text.count(old)
        assert n == 1, (doctype, slug, old, n)
        text = text.replace(old, new)
    assert text != base
    name = f"invalid-{slug}.xml"
    docs.setdefault(doctype, []).append((name, text))
    expect.append((f"{doctype}/{name}", kind, field, reason))

def long_text(n, unit="经审查，申请材料齐全，符合法定形式。"):
    return (unit * (n // len(unit) + 1))[:n]

# ---------------------------------------------------------------- case.register
reg_body = case_doc("CaseRegister", case_header(occurred="2026-11-20T09:12:00+08:00") + f'''      <case:ItemName>食品经营许可（新办）</case:ItemName>
      <case:Applicant>
        <cm:Name>张伟</cm:Name>
        <cm:Kind>自然人</cm:Kind>
        <cm:IdType>居民身份证</cm:IdType>
        <cm:IdNumber>{ID1}</cm:IdNumber>
        <cm:Mobile>13826581234</cm:Mobile>
      </case:Applicant>
      <case:Channel>窗口</case:Channel>
      <case:CaseType>承诺件</case:CaseType>
      <case:LegalDays>20</case:LegalDays>
      <case:PromisedDays>10</case:PromisedDays>
      <case:Materials>
        <case:Material>
          <cm:Name>食品经营许可申请书</cm:Name>
          <cm:Copies>1</cm:Copies>
          <cm:Electronic>false</cm:Electronic>
        </case:Material>
        <case:Material>
          <cm:Name>营业执照复印件</cm:Name>
          <cm:Copies>1</cm:Copies>
          <cm:Electronic>true</cm:Electronic>
        </case:Material>
        <case:Material>
          <cm:Name>经营场所平面布局图</cm:Name>
          <cm:Copies>1</cm:Copies>
          <cm:Electronic>true</cm:Electronic>
        </case:Material>
      </case:Materials>
''')
reg1 = envelope("case.register", "CC-SCJG-REG-20261120-000123", APPROVAL, SUPERVISION, "2026-11-20T09:30:00+08:00", reg_body, "case")
valid("case.register", "valid-1.xml", reg1, "A natural-person applicant registered at the counter with a valid resident ID number and three materials.")
reg_body2 = case_doc("CaseRegister", case_header(caseid="44060420261120000124", dept=(ZJJ, "佛山市禅城区住房城乡建设和水利局"), item="440604-ZJJ-XK-0031", occurred="2026-11-20T10:05:00+08:00") + f'''      <case:ItemName>建筑工程施工许可证核发</case:ItemName>
      <case:Applicant>
        <cm:Name>佛山市禅城区味道餐饮管理有限公司</cm:Name>
        <cm:Kind>法人</cm:Kind>
        <cm:CreditCode>{CY}</cm:CreditCode>
      </case:Applicant>
      <case:Channel>网上</case:Channel>
      <case:CaseType>即办件</case:CaseType>
      <case:LegalDays>7</case:LegalDays>
      <case:PromisedDays>0</case:PromisedDays>
''', attrs=' Id="body-reg-2"')
reg2 = envelope("case.register", "CC-ZJJ-REG-20261120-000124", APPROVAL, SUPERVISION, "2026-11-20T10:06:00+08:00", reg_body2, "case")
valid("case.register", "valid-2.xml", reg2, "A legal-person applicant identified by a valid credit code, registered online, no mobile and no materials, body carrying an Id.")
invalid("case.register", "missing-itemname", reg1, [("      <case:ItemName>食品经营许可（新办）</case:ItemName>\n", "")], "xsd", "ItemName", "The required ItemName element is missing.")
invalid("case.register", "mobile-10-digits", reg1, [("<cm:Mobile>13826581234</cm:Mobile>", "<cm:Mobile>1382658123</cm:Mobile>")], "xsd", "Mobile", "The applicant's mobile number has only 10 digits.")
invalid("case.register", "channel-enum", reg1, [("<case:Channel>窗口</case:Channel>", "<case:Channel>电话</case:Channel>")], "xsd", "Channel", "Channel 电话 is not one of 窗口, 网上, 自助, 移动端.")
invalid("case.register", "sender-node-5-digits", reg1, [("<cm:Node>440604</cm:Node>", "<cm:Node>44060</cm:Node>")], "xsd", "Node", "The envelope Sender node is a 5-digit region code.")
invalid("case.register", "idcard-check-digit", reg1, [(ID1, BAD_ID1)], "semantic", "IdNumber", "The resident ID number has a wrong GB 11643 check digit (XSD cannot see it).")
invalid("case.register", "promised-exceeds-legal", reg1, [("<case:PromisedDays>10</case:PromisedDays>", "<case:PromisedDays>25</case:PromisedDays>")], "semantic", "PromisedDays", "PromisedDays 25 exceeds LegalDays 20.")

# ---------------------------------------------------------------- case.accept
acc_inner = case_header() + handler("case", "SCJG-0412", "李明", "科员") + '''      <case:Opinion>申请材料齐全，符合法定形式，予以受理。</case:Opinion>
      <case:AcceptedAt>2026-11-20T09:25:00+08:00</case:AcceptedAt>
      <case:AcceptNo>禅市监食受〔2026〕1123号</case:AcceptNo>
'''
acc1 = envelope("case.accept", "CC-SCJG-ACC-20261120-000123", APPROVAL, SUPERVISION, "2026-11-20T09:30:00+08:00", case_doc("CaseAccept", acc_inner), "case")
valid("case.accept", "valid-1.xml", acc1, "The case is accepted by a counter officer with an acceptance number.")
invalid("case.accept", "occurredat-no-offset", acc1, [("<case:OccurredAt>2026-11-20T09:25:00+08:00</case:OccurredAt>", "<case:OccurredAt>2026-11-20T09:25:00</case:OccurredAt>")], "xsd", "OccurredAt", "OccurredAt has no time-zone offset.")
invalid("case.accept", "opinion-too-long", acc1, [("<case:Opinion>申请材料齐全，符合法定形式，予以受理。</case:Opinion>", "<case:Opinion>" + long_text(4001) + "</case:Opinion>")], "xsd", "Opinion", "Opinion is 4001 characters long, over the 4000 limit.")
invalid("case.accept", "docversion-2", acc1, [("<env:DocVersion>1</env:DocVersion>", "<env:DocVersion>2</env:DocVersion>")], "xsd", "DocVersion", "DocVersion 2 is not supported by this schema set.")
invalid("case.accept", "doctype-body-mismatch", acc1, [("<case:CaseAccept>", "<case:CaseReview>"), ("</case:CaseAccept>", "</case:CaseReview>"),
        ("""      <case:AcceptedAt>2026-11-20T09:25:00+08:00</case:AcceptedAt>
      <case:AcceptNo>禅市监食受〔2026〕1123号</case:AcceptNo>
""", "      <case:StepLimitDays>3</case:StepLimitDays>\n")], "semantic", "DocType", "DocType says case.accept but the Body holds a schema-valid CaseReview.")
invalid("case.accept", "department-credit-check", acc1, [(SCJG, BAD_SCJG)], "semantic", "Code", "Department/Code has a wrong GB 32100 check character (XSD cannot see it).")

# ---------------------------------------------------------------- case.undertake
und_inner = case_header(occurred="2026-11-23T15:10:00+08:00") + handler("case", "SCJG-0388", "王芳", "食品许可科科员") + '''      <case:Opinion>经现场核查，经营场所布局合理，符合食品安全要求，建议准予许可。</case:Opinion>
      <case:StepLimitDays>5</case:StepLimitDays>
'''
und1 = envelope("case.undertake", "CC-SCJG-UND-20261123-000123", APPROVAL, SUPERVISION, "2026-11-23T15:20:00+08:00", case_doc("CaseUndertake", und_inner), "case")
valid("case.undertake", "valid-1.xml", und1, "The case officer recorded the on-site check and a 5-day step limit.")
invalid("case.undertake", "wrong-order", und1, [(handler("case", "SCJG-0388", "王芳", "食品许可科科员") + "      <case:Opinion>经现场核查，经营场所布局合理，符合食品安全要求，建议准予许可。</case:Opinion>\n",
        "      <case:Opinion>经现场核查，经营场所布局合理，符合食品安全要求，建议准予许可。</case:Opinion>\n" + handler("case", "SCJG-0388", "王芳", "食品许可科科员"))], "xsd", "Opinion", "Opinion comes before Handler, against the schema order.")
invalid("case.undertake", "steplimitdays-negative", und1, [("<case:StepLimitDays>5</case:StepLimitDays>", "<case:StepLimitDays>-1</case:StepLimitDays>")], "xsd", "StepLimitDays", "StepLimitDays is negative.")

# ---------------------------------------------------------------- case.review
rev_inner = case_header(occurred="2026-11-25T10:40:00+08:00") + handler("case", "SCJG-0102", "赵强", "食品许可科科长") + '''      <case:Opinion>同意承办意见。</case:Opinion>
      <case:StepLimitDays>2</case:StepLimitDays>
'''
rev1 = envelope("case.review", "CC-SCJG-REV-20261125-000123", APPROVAL, SUPERVISION, "2026-11-25T10:45:00+08:00", case_doc("CaseReview", rev_inner), "case")
valid("case.review", "valid-1.xml", rev1, "The section chief reviewed the case within a 2-day step limit.")
invalid("case.review", "missing-handler", rev1, [(handler("case", "SCJG-0102", "赵强", "食品许可科科长"), "")], "xsd", "Handler", "The required Handler element is missing.")
invalid("case.review", "region-5-digits", rev1, [("<case:Region>440604</case:Region>", "<case:Region>44060</case:Region>")], "xsd", "Region", "Region is a 5-digit code.")
invalid("case.review", "steplimitdays-too-large", rev1, [("<case:StepLimitDays>2</case:StepLimitDays>", "<case:StepLimitDays>3651</case:StepLimitDays>")], "xsd", "StepLimitDays", "StepLimitDays 3651 is above the 3650 cap.")

# ---------------------------------------------------------------- case.approve
app_inner = case_header(occurred="2026-11-26T16:00:00+08:00") + handler("case", "SCJG-0007", "孙建国", "副局长") + '''      <case:Opinion>同意，准予许可。</case:Opinion>
      <case:Decision>准予</case:Decision>
'''
app1 = envelope("case.approve", "CC-SCJG-APP-20261126-000123", APPROVAL, SUPERVISION, "2026-11-26T16:05:00+08:00", case_doc("CaseApprove", app_inner), "case")
valid("case.approve", "valid-1.xml", app1, "The deputy director granted the licence.")
invalid("case.approve", "decision-enum", app1, [("<case:Decision>准予</case:Decision>", "<case:Decision>同意</case:Decision>")], "xsd", "Decision", "Decision 同意 is not one of 准予, 不予.")
invalid("case.approve", "missing-opinion", app1, [("      <case:Opinion>同意，准予许可。</case:Opinion>\n", "")], "xsd", "Opinion", "The required Opinion element is missing.")

# ---------------------------------------------------------------- case.conclude
con_inner = case_header(occurred="2026-11-27T11:00:00+08:00") + '''      <case:Result>准予许可</case:Result>
      <case:Certificate>
        <case:Number>JY24406040012345</case:Number>
        <case:Name>食品经营许可证</case:Name>
        <case:ValidUntil>2031-11-26T23:59:59+08:00</case:ValidUntil>
      </case:Certificate>
      <case:DeliveryMode>窗口领取</case:DeliveryMode>
      <case:ConcludedAt>2026-11-27T11:00:00+08:00</case:ConcludedAt>
'''
con1 = envelope("case.conclude", "CC-SCJG-CON-20261127-000123", APPROVAL, SUPERVISION, "2026-11-27T11:05:00+08:00", case_doc("CaseConclude", con_inner, ' Id="body-conclude"'), "case")
valid("case.conclude", "valid-1.xml", con1, "The licence was granted and a certificate valid for five years issued.")
con_inner2 = case_header(caseid="44060420261118000098", occurred="2026-11-21T14:30:00+08:00") + '''      <case:Result>撤回</case:Result>
      <case:ConcludedAt>2026-11-21T14:30:00+08:00</case:ConcludedAt>
'''
con2 = envelope("case.conclude", "CC-SCJG-CON-20261121-000098", APPROVAL, SUPERVISION, "2026-11-21T14:35:00+08:00", case_doc("CaseConclude", con_inner2), "case")
valid("case.conclude", "valid-2.xml", con2, "The applicant withdrew; no certificate and no delivery mode.")
invalid("case.conclude", "result-enum", con1, [("<case:Result>准予许可</case:Result>", "<case:Result>已办结</case:Result>")], "xsd", "Result", "Result 已办结 is not one of the five conclusion results.")
invalid("case.conclude", "certificate-wrong-order", con1, [("""      <case:DeliveryMode>窗口领取</case:DeliveryMode>
""", ""), ("      <case:Certificate>\n", "      <case:DeliveryMode>窗口领取</case:DeliveryMode>\n      <case:Certificate>\n")], "xsd", "Certificate", "Certificate comes after DeliveryMode, against the schema order.")
invalid("case.conclude", "certificate-expired", con1, [("<case:ValidUntil>2031-11-26T23:59:59+08:00</case:ValidUntil>", "<case:ValidUntil>2026-11-26T23:59:59+08:00</case:ValidUntil>")], "semantic", "ValidUntil", "Certificate ValidUntil is a day before ConcludedAt.")

# ---------------------------------------------------------------- case.supplement-notice
def req_material(name, req):
    return f'''        <case:Material>
          <case:Name>{name}</case:Name>
          <case:Requirement>{req}</case:Requirement>
        </case:Material>
'''
sn_inner = case_header(occurred="2026-11-21T10:00:00+08:00") + '''      <case:RequiredMaterials>
''' + req_material("经营场所平面布局图", "原图未标注食品处理区面积，请补充标注后重新提交。") + '''        <case:Material>
          <case:Name>食品安全管理人员健康证明</case:Name>
        </case:Material>
      </case:RequiredMaterials>
      <case:NoticeAt>2026-11-21T10:00:00+08:00</case:NoticeAt>
'''
sn1 = envelope("case.supplement-notice", "CC-SCJG-BJGZ-20261121-000123", APPROVAL, SUPERVISION, "2026-11-21T10:05:00+08:00", case_doc("CaseSupplementNotice", sn_inner), "case")
valid("case.supplement-notice", "valid-1.xml", sn1, "The applicant is told to supply two materials; the clock stops.")
invalid("case.supplement-notice", "empty-required-materials", sn1, [(req_material("经营场所平面布局图", "原图未标注食品处理区面积，请补充标注后重新提交。") + '''        <case:Material>
          <case:Name>食品安全管理人员健康证明</case:Name>
        </case:Material>
''', "")], "xsd", "RequiredMaterials", "RequiredMaterials has no Material child.")
invalid("case.supplement-notice", "too-many-materials", sn1, [(req_material("经营场所平面布局图", "原图未标注食品处理区面积，请补充标注后重新提交。"),
        "".join(req_material(f"补充材料{i}", "请提交原件扫描件。") for i in range(1, 201)))], "xsd", "Material", "RequiredMaterials lists 201 materials, over the limit of 200.")

# ---------------------------------------------------------------- case.supplement-received
sr_inner = case_header(occurred="2026-11-22T09:40:00+08:00") + '''      <case:ReceivedAt>2026-11-22T09:40:00+08:00</case:ReceivedAt>
'''
sr1 = envelope("case.supplement-received", "CC-SCJG-BJSL-20261122-000123", APPROVAL, SUPERVISION, "2026-11-22T09:45:00+08:00", case_doc("CaseSupplementReceived", sr_inner), "case")
valid("case.supplement-received", "valid-1.xml", sr1, "The supplied materials were received; the clock runs again.")
invalid("case.supplement-received", "receivedat-date-only", sr1, [("<case:ReceivedAt>2026-11-22T09:40:00+08:00</case:ReceivedAt>", "<case:ReceivedAt>2026-11-22</case:ReceivedAt>")], "xsd", "ReceivedAt", "ReceivedAt is a date without time and offset.")
invalid("case.supplement-received", "caseid-pattern", sr1, [("<case:CaseId>44060420261120000123</case:CaseId>", "<case:CaseId>禅城2026-123</case:CaseId>")], "xsd", "CaseId", "CaseId contains Chinese characters, outside its pattern.")

# ---------------------------------------------------------------- case.special-procedure
sp_inner = case_header(caseid="44060420261110000311", item="440604-ZJJ-XK-0031", dept=(ZJJ, "佛山市禅城区住房城乡建设和水利局"), occurred="2026-11-27T17:00:00+08:00") + '''      <case:Kind>专家评审</case:Kind>
      <case:StartAt>2026-11-24T09:00:00+08:00</case:StartAt>
      <case:EndAt>2026-11-27T17:00:00+08:00</case:EndAt>
      <case:Result>专家组评审通过，施工图设计文件符合要求。</case:Result>
      <case:Days>4</case:Days>
'''
sp1 = envelope("case.special-procedure", "CC-ZJJ-TBCX-20261127-000311", APPROVAL, SUPERVISION, "2026-11-27T17:10:00+08:00", case_doc("CaseSpecialProcedure", sp_inner), "case")
valid("case.special-procedure", "valid-1.xml", sp1, "An expert review that ran four working days and has ended.")
sp_inner2 = case_header(caseid="44060420261110000311", item="440604-ZJJ-XK-0031", dept=(ZJJ, "佛山市禅城区住房城乡建设和水利局"), occurred="2026-11-24T09:00:00+08:00") + '''      <case:Kind>专家评审</case:Kind>
      <case:StartAt>2026-11-24T09:00:00+08:00</case:StartAt>
      <case:Days>5</case:Days>
'''
sp2 = envelope("case.special-procedure", "CC-ZJJ-TBCX-20261124-000311", APPROVAL, SUPERVISION, "2026-11-24T09:05:00+08:00", case_doc("CaseSpecialProcedure", sp_inner2), "case")
valid("case.special-procedure", "valid-2.xml", sp2, "The same expert review reported at its start, without EndAt and Result.")
invalid("case.special-procedure", "kind-enum", sp1, [("<case:Kind>专家评审</case:Kind>", "<case:Kind>现场勘查</case:Kind>")], "xsd", "Kind", "Kind 现场勘查 is not one of the nine special procedures.")
invalid("case.special-procedure", "missing-days", sp1, [("      <case:Days>4</case:Days>\n", "")], "xsd", "Days", "The required Days element is missing.")
invalid("case.special-procedure", "start-after-end", sp1, [("<case:EndAt>2026-11-27T17:00:00+08:00</case:EndAt>", "<case:EndAt>2026-11-21T17:00:00+08:00</case:EndAt>")], "semantic", "EndAt", "EndAt is three days before StartAt.")

# ---------------------------------------------------------------- case.reject
rj_inner = case_header(caseid="44060420261120000140", occurred="2026-11-20T11:20:00+08:00") + '''      <case:Kind>不予受理</case:Kind>
      <case:Reason>申请事项依法不属于本行政机关职权范围，已告知申请人向佛山市市场监督管理局申请。</case:Reason>
      <case:LegalBasis>《中华人民共和国行政许可法》第三十二条第一款第（二）项</case:LegalBasis>
'''
rj1 = envelope("case.reject", "CC-SCJG-BYSL-20261120-000140", APPROVAL, SUPERVISION, "2026-11-20T11:25:00+08:00", case_doc("CaseReject", rj_inner), "case")
valid("case.reject", "valid-1.xml", rj1, "The application is not accepted, with reason and legal basis.")
invalid("case.reject", "kind-enum", rj1, [("<case:Kind>不予受理</case:Kind>", "<case:Kind>驳回</case:Kind>")], "xsd", "Kind", "Kind 驳回 is not one of 不予受理, 退件.")
invalid("case.reject", "missing-reason", rj1, [("      <case:Reason>申请事项依法不属于本行政机关职权范围，已告知申请人向佛山市市场监督管理局申请。</case:Reason>\n", "")], "xsd", "Reason", "The required Reason element is missing.")

# ---------------------------------------------------------------- case.fee
def fee_inner(std, chg, red, reason=None, caseid="44060420261119000077"):
    rr = f"      <case:ReductionReason>{reason}</case:ReductionReason>\n" if reason else ""
    return case_header(caseid=caseid, item="440604-BDC-QT-0005", dept=(BDC, "佛山市禅城区不动产登记中心"), occurred="2026-11-20T14:02:00+08:00") + f'''      <case:FeeItem>
        <cm:Code>BDC-DJF-01</cm:Code>
        <cm:Name>住宅类不动产登记费</cm:Name>
      </case:FeeItem>
      <case:StandardAmount>{std}</case:StandardAmount>
      <case:ChargedAmount>{chg}</case:ChargedAmount>
      <case:ReductionAmount>{red}</case:ReductionAmount>
{rr}      <case:PaidAt>2026-11-20T14:02:00+08:00</case:PaidAt>
      <case:ReceiptNo>粤财收字No.0044060412345</case:ReceiptNo>
'''
fee1 = envelope("case.fee", "CC-BDC-SF-20261120-000077", APPROVAL, SUPERVISION, "2026-11-20T14:10:00+08:00", case_doc("CaseFee", fee_inner("80.00", "80.00", "0.00")), "case")
valid("case.fee", "valid-1.xml", fee1, "A registration fee charged in full: 80.00 = 80.00 + 0.00.")
fee2 = envelope("case.fee", "CC-BDC-SF-20261120-000078", APPROVAL, SUPERVISION, "2026-11-20T14:10:00+08:00",
    case_doc("CaseFee", fee_inner("550.00", "0.00", "550.00", "小微企业免征不动产登记费（财税〔2019〕45号）", caseid="44060420261119000078").replace("住宅类不动产登记费", "非住宅类不动产登记费")), "case")
valid("case.fee", "valid-2.xml", fee2, "A fee waived in full for a small enterprise: 550.00 = 0.00 + 550.00.")
invalid("case.fee", "amounts-do-not-add-up", fee1, [("<case:ChargedAmount>80.00</case:ChargedAmount>", "<case:ChargedAmount>60.00</case:ChargedAmount>"), ("<case:ReductionAmount>0.00</case:ReductionAmount>", "<case:ReductionAmount>10.00</case:ReductionAmount>")],
        "semantic", "ChargedAmount", "ChargedAmount 60.00 plus ReductionAmount 10.00 does not equal StandardAmount 80.00.")
invalid("case.fee", "amount-three-decimals", fee1, [("<case:StandardAmount>80.00</case:StandardAmount>", "<case:StandardAmount>80.005</case:StandardAmount>")], "xsd", "StandardAmount", "StandardAmount has three fraction digits.")
invalid("case.fee", "negative-reduction", fee1, [("<case:ReductionAmount>0.00</case:ReductionAmount>", "<case:ReductionAmount>-10.00</case:ReductionAmount>"), ("<case:ChargedAmount>80.00</case:ChargedAmount>", "<case:ChargedAmount>90.00</case:ChargedAmount>")], "xsd", "ReductionAmount", "ReductionAmount is negative (the sum still matches, so only XSD fails).")

# ---------------------------------------------------------------- case.rating
rt_inner = case_header(occurred="2026-11-27T11:20:00+08:00") + '''      <case:Score>非常满意</case:Score>
      <case:Channel>评价器</case:Channel>
      <case:Comment>窗口工作人员耐心细致，一次就办好了。</case:Comment>
'''
rt1 = envelope("case.rating", "CC-SCJG-PJ-20261127-000123", APPROVAL, SUPERVISION, "2026-11-27T11:25:00+08:00", case_doc("CaseRating", rt_inner), "case")
valid("case.rating", "valid-1.xml", rt1, "The applicant rated the service at the counter rating device.")
invalid("case.rating", "score-enum", rt1, [("<case:Score>非常满意</case:Score>", "<case:Score>很满意</case:Score>")], "xsd", "Score", "Score 很满意 is not one of the four ratings.")
invalid("case.rating", "comment-too-long", rt1, [("<case:Comment>窗口工作人员耐心细致，一次就办好了。</case:Comment>", "<case:Comment>" + long_text(1001, "窗口工作人员耐心细致，一次就办好了。") + "</case:Comment>")], "xsd", "Comment", "Comment is 1001 characters long, over the 1000 limit.")
invalid("case.rating", "created-no-offset", rt1, [("<env:Created>2026-11-27T11:25:00+08:00</env:Created>", "<env:Created>2026-11-27T11:25:00</env:Created>")], "xsd", "Created", "The envelope Created time has no time-zone offset.")

# ---------------------------------------------------------------- public.application
SHA_A = hashlib.sha256("食品经营许可申请书.pdf".encode()).hexdigest()
SHA_B = hashlib.sha256("经营场所平面布局图.jpg".encode()).hexdigest()
pa_body = f'''    <pub:Application>
      <pub:ApplicationId>WSSB-20261119-004817</pub:ApplicationId>
      <pub:ItemCode>440604-SCJG-XK-0012</pub:ItemCode>
      <pub:Region>440604</pub:Region>
      <pub:Applicant>
        <cm:Name>陈静</cm:Name>
        <cm:Kind>自然人</cm:Kind>
        <cm:IdType>居民身份证</cm:IdType>
        <cm:IdNumber>{ID2}</cm:IdNumber>
        <cm:Mobile>15017654321</cm:Mobile>
      </pub:Applicant>
      <pub:Form>
        <pub:Field>
          <pub:Name>经营者名称</pub:Name>
          <pub:Value>禅城区陈记糖水店</pub:Value>
        </pub:Field>
        <pub:Field>
          <pub:Name>经营场所</pub:Name>
          <pub:Value>佛山市禅城区祖庙街道福贤路12号首层</pub:Value>
        </pub:Field>
        <pub:Field>
          <pub:Name>经营项目</pub:Name>
          <pub:Value>热食类食品制售；冷食类食品制售</pub:Value>
        </pub:Field>
      </pub:Form>
      <pub:Attachments>
        <pub:Attachment>
          <pub:Name>食品经营许可申请书.pdf</pub:Name>
          <pub:MediaType>application/pdf</pub:MediaType>
          <pub:Sha256>{SHA_A}</pub:Sha256>
          <pub:Size>245760</pub:Size>
        </pub:Attachment>
        <pub:Attachment>
          <pub:Name>经营场所平面布局图.jpg</pub:Name>
          <pub:MediaType>image/jpeg</pub:MediaType>
          <pub:Sha256>{SHA_B}</pub:Sha256>
          <pub:Size>1048576</pub:Size>
        </pub:Attachment>
      </pub:Attachments>
      <pub:SubmittedAt>2026-11-19T21:14:36+08:00</pub:SubmittedAt>
    </pub:Application>
'''
pa1 = envelope("public.application", "WSDT-20261119-004817", ("440604", "online-hall"), APPROVAL, "2026-11-19T21:15:00+08:00", pa_body, "pub")
valid("public.application", "valid-1.xml", pa1, "An online application with three form fields and two attachments.")
pa_body2 = f'''    <pub:Application Id="app-004902">
      <pub:ApplicationId>WSSB-20261120-004902</pub:ApplicationId>
      <pub:ItemCode>440604-SCJG-DJ-0003</pub:ItemCode>
      <pub:Region>440604</pub:Region>
      <pub:Applicant>
        <cm:Name>佛山市禅城区启航科技有限公司</cm:Name>
        <cm:Kind>法人</cm:Kind>
        <cm:CreditCode>{KJ}</cm:CreditCode>
        <cm:Mobile>18688012345</cm:Mobile>
      </pub:Applicant>
      <pub:SubmittedAt>2026-11-20T08:47:03+08:00</pub:SubmittedAt>
    </pub:Application>
'''
pa2 = envelope("public.application", "WSDT-20261120-004902", ("440604", "online-hall"), APPROVAL, "2026-11-20T08:47:10+08:00", pa_body2, "pub")
valid("public.application", "valid-2.xml", pa2, "A minimal online application by a company, without form data or attachments.")
invalid("public.application", "sha256-short", pa1, [(f"<pub:Sha256>{SHA_A}</pub:Sha256>", f"<pub:Sha256>{SHA_A[:62]}</pub:Sha256>")], "xsd", "Sha256", "The first attachment's Sha256 has 31 bytes instead of 32.")
invalid("public.application", "mediatype-pattern", pa1, [("<pub:MediaType>image/jpeg</pub:MediaType>", "<pub:MediaType>jpeg</pub:MediaType>")], "xsd", "MediaType", "MediaType jpeg is not of the form type/subtype.")
invalid("public.application", "applicant-credit-check", pa2, [(KJ, BAD_KJ)], "semantic", "CreditCode", "The applicant's credit code has a wrong GB 32100 check character (XSD cannot see it).")

# ---------------------------------------------------------------- public.complaint
PORTAL = ("440600", "portal")
pc_body = f'''    <pub:Complaint>
      <pub:ComplaintId>TS-20261120-000318</pub:ComplaintId>
      <pub:Kind>效能投诉</pub:Kind>
      <pub:TargetDepartment>
        <cm:Code>{SCJG}</cm:Code>
        <cm:Name>佛山市禅城区市场监督管理局</cm:Name>
      </pub:TargetDepartment>
      <pub:CaseId>44060420261101000456</pub:CaseId>
      <pub:Subject>食品经营许可超过承诺时限未办结</pub:Subject>
      <pub:Content>本人于11月1日在禅城区行政服务中心申请食品经营许可，承诺10个工作日办结，至今已超过承诺时限，窗口答复仍在审核中，请督促办理。</pub:Content>
      <pub:Submitter>
        <cm:Name>刘洋</cm:Name>
        <cm:Mobile>13703011234</cm:Mobile>
        <cm:Anonymous>false</cm:Anonymous>
      </pub:Submitter>
      <pub:SubmittedAt>2026-11-20T08:15:22+08:00</pub:SubmittedAt>
    </pub:Complaint>
'''
pc1 = envelope("public.complaint", "PT-TS-20261120-000318", PORTAL, SUPERVISION, "2026-11-20T08:16:00+08:00", pc_body, "pub")
valid("public.complaint", "valid-1.xml", pc1, "An efficiency complaint about an overdue case, with the submitter's name and mobile.")
pc_body2 = f'''    <pub:Complaint>
      <pub:ComplaintId>TS-20261120-000321</pub:ComplaintId>
      <pub:Kind>投诉</pub:Kind>
      <pub:TargetDepartment>
        <cm:Code>{SJ_SCJG}</cm:Code>
        <cm:Name>佛山市市场监督管理局</cm:Name>
      </pub:TargetDepartment>
      <pub:Subject>窗口工作人员服务态度问题</pub:Subject>
      <pub:Content>11月19日下午在市政务服务中心市场监管窗口咨询时，工作人员态度生硬。</pub:Content>
      <pub:Submitter>
        <cm:Anonymous>true</cm:Anonymous>
      </pub:Submitter>
      <pub:SubmittedAt>2026-11-20T09:02:10+08:00</pub:SubmittedAt>
    </pub:Complaint>
'''
pc2 = envelope("public.complaint", "PT-TS-20261120-000321", PORTAL, SUPERVISION, "2026-11-20T09:03:00+08:00", pc_body2, "pub")
valid("public.complaint", "valid-2.xml", pc2, "An anonymous complaint without name, mobile or case.")
invalid("public.complaint", "kind-enum", pc1, [("<pub:Kind>效能投诉</pub:Kind>", "<pub:Kind>举报</pub:Kind>")], "xsd", "Kind", "Kind 举报 is not one of 投诉, 效能投诉, 信访, 领导信箱.")
invalid("public.complaint", "subject-too-long", pc1, [("<pub:Subject>食品经营许可超过承诺时限未办结</pub:Subject>", "<pub:Subject>" + long_text(201, "食品经营许可超过承诺时限未办结") + "</pub:Subject>")], "xsd", "Subject", "Subject is 201 characters long, over the 200 limit.")
invalid("public.complaint", "target-credit-check", pc1, [(SCJG, BAD_SCJG)], "semantic", "Code", "TargetDepartment/Code has a wrong GB 32100 check character (XSD cannot see it).")

# ---------------------------------------------------------------- public.consultation
cs_body = '''    <pub:Consultation>
      <pub:ConsultationId>ZX-20261120-001207</pub:ConsultationId>
      <pub:ItemCode>440604-SCJG-XK-0012</pub:ItemCode>
      <pub:Question>个体工商户办理食品经营许可，经营场所是租赁的，需要提供哪些证明材料？</pub:Question>
      <pub:Submitter>
        <cm:Name>黄女士</cm:Name>
        <cm:Mobile>13923145678</cm:Mobile>
        <cm:Anonymous>false</cm:Anonymous>
      </pub:Submitter>
      <pub:SubmittedAt>2026-11-20T12:31:08+08:00</pub:SubmittedAt>
    </pub:Consultation>
'''
cs1 = envelope("public.consultation", "PT-ZX-20261120-001207", PORTAL, SUPERVISION, "2026-11-20T12:32:00+08:00", cs_body, "pub")
valid("public.consultation", "valid-1.xml", cs1, "A question about the materials of one item.")
invalid("public.consultation", "missing-submitter", cs1, [('''      <pub:Submitter>
        <cm:Name>黄女士</cm:Name>
        <cm:Mobile>13923145678</cm:Mobile>
        <cm:Anonymous>false</cm:Anonymous>
      </pub:Submitter>
''', "")], "xsd", "Submitter", "The required Submitter element is missing.")
invalid("public.consultation", "mobile-10-digits", cs1, [("<cm:Mobile>13923145678</cm:Mobile>", "<cm:Mobile>1392314567</cm:Mobile>")], "xsd", "Mobile", "The submitter's mobile number has only 10 digits.")

# ---------------------------------------------------------------- public.reply
rp_inner_handler = '''      <pub:Handler>
        <cm:Id>SCJG-0215</cm:Id>
        <cm:Name>周敏</cm:Name>
        <cm:Post>办公室科员</cm:Post>
      </pub:Handler>
'''
rp_body = '''    <pub:Reply>
      <pub:RefId>ZX-20261120-001207</pub:RefId>
      <pub:Content>您好！经营场所为租赁的，除申请书等材料外，还需提供租赁合同及出租方的产权证明复印件。详情可致电12345咨询。</pub:Content>
''' + rp_inner_handler + '''      <pub:RepliedAt>2026-11-20T16:05:00+08:00</pub:RepliedAt>
      <pub:Satisfaction>满意</pub:Satisfaction>
    </pub:Reply>
'''
rp1 = envelope("public.reply", "SV-DF-20261120-001207", SUPERVISION, PORTAL, "2026-11-20T16:06:00+08:00", rp_body, "pub",
               after_docversion="  <env:CorrelationId>PT-ZX-20261120-001207</env:CorrelationId>\n")
valid("public.reply", "valid-1.xml", rp1, "A reply to a consultation, correlated to the request, with the submitter's satisfaction.")
invalid("public.reply", "satisfaction-enum", rp1, [("<pub:Satisfaction>满意</pub:Satisfaction>", "<pub:Satisfaction>一般</pub:Satisfaction>")], "xsd", "Satisfaction", "Satisfaction 一般 is not one of the four ratings.")
invalid("public.reply", "wrong-order", rp1, [(rp_inner_handler + "      <pub:RepliedAt>2026-11-20T16:05:00+08:00</pub:RepliedAt>\n",
        "      <pub:RepliedAt>2026-11-20T16:05:00+08:00</pub:RepliedAt>\n" + rp_inner_handler)], "xsd", "RepliedAt", "RepliedAt comes before Handler, against the schema order.")

# ---------------------------------------------------------------- public.case-status
st_body = '''    <pub:CaseStatus>
      <pub:CaseId>44060420261120000123</pub:CaseId>
      <pub:Region>440604</pub:Region>
      <pub:ItemName>食品经营许可（新办）</pub:ItemName>
      <pub:Stage>承办</pub:Stage>
      <pub:StatusText>您的申请已受理，正在审查中，承诺于2026年12月4日前办结。</pub:StatusText>
      <pub:UpdatedAt>2026-11-23T15:10:00+08:00</pub:UpdatedAt>
    </pub:CaseStatus>
'''
cst1 = envelope("public.case-status", "CC-JD-20261123-000123", APPROVAL, ("440604", "portal"), "2026-11-23T15:12:00+08:00", st_body, "pub")
valid("public.case-status", "valid-1.xml", cst1, "Public progress of a case in the undertake stage, without personal data.")
invalid("public.case-status", "stage-enum", cst1, [("<pub:Stage>承办</pub:Stage>", "<pub:Stage>已受理</pub:Stage>")], "xsd", "Stage", "Stage 已受理 is not one of the stage names.")
invalid("public.case-status", "region-5-digits", cst1, [("<pub:Region>440604</pub:Region>", "<pub:Region>44064</pub:Region>")], "xsd", "Region", "Region is a 5-digit code.")

# ---------------------------------------------------------------- catalog.item
ci_body = f'''    <cat:CatalogItem>
      <cat:ItemCode>440604-SCJG-XK-0012</cat:ItemCode>
      <cat:ItemName>食品经营许可（新办）</cat:ItemName>
      <cat:Department>
        <cm:Code>{SCJG}</cm:Code>
        <cm:Name>佛山市禅城区市场监督管理局</cm:Name>
      </cat:Department>
      <cat:Region>440604</cat:Region>
      <cat:LegalBasis>《中华人民共和国食品安全法》第三十五条；《食品经营许可和备案管理办法》</cat:LegalBasis>
      <cat:LegalDays>20</cat:LegalDays>
      <cat:PromisedDays>10</cat:PromisedDays>
      <cat:CaseType>承诺件</cat:CaseType>
      <cat:Materials>
        <cat:Material>
          <cm:Name>食品经营许可申请书</cm:Name>
          <cm:Copies>1</cm:Copies>
          <cm:Electronic>true</cm:Electronic>
        </cat:Material>
        <cat:Material>
          <cm:Name>营业执照复印件</cm:Name>
          <cm:Copies>1</cm:Copies>
          <cm:Electronic>true</cm:Electronic>
        </cat:Material>
      </cat:Materials>
      <cat:Version>2026.3</cat:Version>
      <cat:EffectiveFrom>2026-12-01T00:00:00+08:00</cat:EffectiveFrom>
    </cat:CatalogItem>
'''
ci1 = envelope("catalog.item", "SXML-440604-SCJG-XK-0012-2026.3", ("440600", "catalog"), SUPERVISION, "2026-11-20T09:30:00+08:00", ci_body, "cat")
valid("catalog.item", "valid-1.xml", ci1, "A free-of-charge catalogue item with two materials.")
ci_body2 = f'''    <cat:CatalogItem>
      <cat:ItemCode>440604-BDC-QT-0005</cat:ItemCode>
      <cat:ItemName>不动产转移登记</cat:ItemName>
      <cat:Department>
        <cm:Code>{BDC}</cm:Code>
        <cm:Name>佛山市禅城区不动产登记中心</cm:Name>
      </cat:Department>
      <cat:Region>440604</cat:Region>
      <cat:LegalBasis>《不动产登记暂行条例》第二十条</cat:LegalBasis>
      <cat:LegalDays>30</cat:LegalDays>
      <cat:PromisedDays>5</cat:PromisedDays>
      <cat:CaseType>承诺件</cat:CaseType>
      <cat:Fees>
        <cat:Fee>
          <cm:Code>BDC-DJF-01</cm:Code>
          <cm:Name>住宅类不动产登记费</cm:Name>
          <cm:StandardAmount>80.00</cm:StandardAmount>
        </cat:Fee>
        <cat:Fee>
          <cm:Code>BDC-DJF-02</cm:Code>
          <cm:Name>非住宅类不动产登记费</cm:Name>
          <cm:StandardAmount>550.00</cm:StandardAmount>
        </cat:Fee>
      </cat:Fees>
      <cat:Version>1</cat:Version>
      <cat:EffectiveFrom>2026-01-01T00:00:00+08:00</cat:EffectiveFrom>
    </cat:CatalogItem>
'''
ci2 = envelope("catalog.item", "SXML-440604-BDC-QT-0005-1", ("440600", "catalog"), SUPERVISION, "2026-11-20T09:30:00+08:00", ci_body2, "cat")
valid("catalog.item", "valid-2.xml", ci2, "A catalogue item with two fees and no materials list.")
invalid("catalog.item", "promised-exceeds-legal", ci1, [("<cat:PromisedDays>10</cat:PromisedDays>", "<cat:PromisedDays>30</cat:PromisedDays>")], "semantic", "PromisedDays", "PromisedDays 30 exceeds LegalDays 20.")
invalid("catalog.item", "legaldays-too-large", ci1, [("<cat:LegalDays>20</cat:LegalDays>", "<cat:LegalDays>3651</cat:LegalDays>")], "xsd", "LegalDays", "LegalDays 3651 is above the 3650 cap.")
invalid("catalog.item", "casetype-enum", ci1, [("<cat:CaseType>承诺件</cat:CaseType>", "<cat:CaseType>普通件</cat:CaseType>")], "xsd", "CaseType", "CaseType 普通件 is not one of 即办件, 承诺件, 联办件, 上报件.")

# ---------------------------------------------------------------- stats.report
sr_body = f'''    <st:StatsReport>
      <st:Period>月</st:Period>
      <st:PeriodStart>2026-10-01</st:PeriodStart>
      <st:Region>440604</st:Region>
      <st:Department>
        <cm:Code>{SCJG}</cm:Code>
        <cm:Name>佛山市禅城区市场监督管理局</cm:Name>
      </st:Department>
      <st:Public>true</st:Public>
      <st:Received>1284</st:Received>
      <st:Concluded>1219</st:Concluded>
      <st:ByCaseType>
        <st:Entry>
          <st:CaseType>即办件</st:CaseType>
          <st:Count>402</st:Count>
        </st:Entry>
        <st:Entry>
          <st:CaseType>承诺件</st:CaseType>
          <st:Count>861</st:Count>
        </st:Entry>
        <st:Entry>
          <st:CaseType>联办件</st:CaseType>
          <st:Count>17</st:Count>
        </st:Entry>
        <st:Entry>
          <st:CaseType>上报件</st:CaseType>
          <st:Count>4</st:Count>
        </st:Entry>
      </st:ByCaseType>
      <st:ByTimeStatus>
        <st:Entry>
          <st:TimeStatus>正常</st:TimeStatus>
          <st:Count>1251</st:Count>
        </st:Entry>
        <st:Entry>
          <st:TimeStatus>预警</st:TimeStatus>
          <st:Count>26</st:Count>
        </st:Entry>
        <st:Entry>
          <st:TimeStatus>黄牌</st:TimeStatus>
          <st:Count>6</st:Count>
        </st:Entry>
        <st:Entry>
          <st:TimeStatus>红牌</st:TimeStatus>
          <st:Count>1</st:Count>
        </st:Entry>
      </st:ByTimeStatus>
      <st:OnTimeRate>99.43</st:OnTimeRate>
    </st:StatsReport>
'''
sr1 = envelope("stats.report", "TJ-440604-SCJG-202610", ("440604", "supervision"), SUPERVISION, "2026-11-02T08:00:00+08:00", sr_body, "st")
valid("stats.report", "valid-1.xml", sr1, "A public monthly report of one department for October 2026.")
invalid("stats.report", "period-enum", sr1, [("<st:Period>月</st:Period>", "<st:Period>month</st:Period>")], "xsd", "Period", "Period month is English; the code list is 月, 季, 年.")
invalid("stats.report", "ontimerate-over-100", sr1, [("<st:OnTimeRate>99.43</st:OnTimeRate>", "<st:OnTimeRate>100.50</st:OnTimeRate>")], "xsd", "OnTimeRate", "OnTimeRate 100.50 is above 100.")

# ---------------------------------------------------------------- feedback.result
MARKET = ("440600", "market-reg")
fb_body = '''    <fb:FeedbackResult>
      <fb:CorrelationId>CC-SCJG-ACC-20261120-000123</fb:CorrelationId>
      <fb:CaseId>44060420261120000123</fb:CaseId>
      <fb:Status>已接收</fb:Status>
      <fb:Detail>已接收受理信息，转食品经营许可科办理。</fb:Detail>
      <fb:RespondedAt>2026-11-20T09:31:12+08:00</fb:RespondedAt>
    </fb:FeedbackResult>
'''
fb1 = envelope("feedback.result", "SCJ-FK-20261120-88231", MARKET, APPROVAL, "2026-11-20T09:31:15+08:00", fb_body, "fb",
               after_docversion="  <env:CorrelationId>CC-SCJG-ACC-20261120-000123</env:CorrelationId>\n")
valid("feedback.result", "valid-1.xml", fb1, "A department system acknowledges a case handed to it, correlated to the request.")
fb2 = envelope("feedback.result", "SCJ-FK-20261120-88231", MARKET, APPROVAL, "2026-11-20T09:31:15+08:00", fb_body, "fb",
               pre="  <env:MessageId>3f2b8c1e-9a4d-4e7b-b0c2-5d6e7f809a1b</env:MessageId>\n",
               after_docversion="  <env:CorrelationId>CC-SCJG-ACC-20261120-000123</env:CorrelationId>\n",
               head_extra='''  <env:Expires>2026-11-27T09:31:15+08:00</env:Expires>
  <env:Priority>high</env:Priority>
  <env:Trace>
    <env:Hop>
      <env:Gateway>sluice-440600-outer</env:Gateway>
      <env:At>2026-11-20T09:31:16+08:00</env:At>
    </env:Hop>
    <env:Hop>
      <env:Gateway>sluice-440600-inner</env:Gateway>
      <env:At>2026-11-20T09:31:17+08:00</env:At>
    </env:Hop>
  </env:Trace>
''')
valid("feedback.result", "valid-2.xml", fb2, "The same feedback as forwarded by gateways: MessageId, Expires, Priority and two Trace hops filled in.")
invalid("feedback.result", "status-enum", fb1, [("<fb:Status>已接收</fb:Status>", "<fb:Status>success</fb:Status>")], "xsd", "Status", "Status success is not one of the five feedback states.")
invalid("feedback.result", "missing-correlationid", fb1, [("      <fb:CorrelationId>CC-SCJG-ACC-20261120-000123</fb:CorrelationId>\n", "")], "xsd", "CorrelationId", "The required CorrelationId element is missing from the body.")
invalid("feedback.result", "messageid-uppercase", fb2, [("3f2b8c1e-9a4d-4e7b-b0c2-5d6e7f809a1b", "3F2B8C1E-9A4D-4E7B-B0C2-5D6E7F809A1B")], "xsd", "MessageId", "The envelope MessageId is an upper-case UUID.")

# ---------------------------------------------------------------- receipt
DIGEST = base64.b64encode(hashlib.sha256(acc1.encode()).digest()).decode()
rc_bare = f'''<?xml version="1.0" encoding="UTF-8"?>
<rc:Receipt xmlns:rc="urn:sluice:xs:receipt:1" xmlns:cm="urn:sluice:xs:common:1" Id="receipt-1">
  <rc:MessageId>0b7e5c2a-41d3-4f6a-9e8b-2c1d0a9f8e7d</rc:MessageId>
  <rc:Sender>
    <cm:Node>440604</cm:Node>
    <cm:System>approval</cm:System>
  </rc:Sender>
  <rc:SenderMessageId>CC-SCJG-ACC-20261120-000123</rc:SenderMessageId>
  <rc:DocType>case.accept</rc:DocType>
  <rc:Digest Algorithm="http://www.w3.org/2001/04/xmlenc#sha256">{DIGEST}</rc:Digest>
  <rc:Status>accepted</rc:Status>
  <rc:Time>2026-11-20T09:30:01+08:00</rc:Time>
  <rc:Signer>CN=sluice-440600-outer,OU=数据交换,O=佛山市政务服务数据管理局,C=CN</rc:Signer>
</rc:Receipt>
'''
valid("receipt", "valid-1.xml", rc_bare, "A bare receipt: the gateway accepted a case.accept message.")
rc_body = f'''    <rc:Receipt>
      <rc:MessageId>0b7e5c2a-41d3-4f6a-9e8b-2c1d0a9f8e7d</rc:MessageId>
      <rc:SenderMessageId>CC-SCJG-ACC-20261120-000123</rc:SenderMessageId>
      <rc:DocType>case.accept</rc:DocType>
      <rc:Status>delivered</rc:Status>
      <rc:Time>2026-11-20T09:30:04+08:00</rc:Time>
      <rc:Signer>CN=sluice-440600-inner,OU=数据交换,O=佛山市政务服务数据管理局,C=CN</rc:Signer>
    </rc:Receipt>
'''
rc2 = envelope("receipt", "RC-0b7e5c2a-delivered", ("440600", "gateway"), APPROVAL, "2026-11-20T09:30:04+08:00", rc_body, "rc",
               after_docversion="  <env:CorrelationId>CC-SCJG-ACC-20261120-000123</env:CorrelationId>\n")
valid("receipt", "valid-2.xml", rc2, "A delivered receipt wrapped in an envelope with DocType receipt.")
rc_bare3 = '''<?xml version="1.0" encoding="UTF-8"?>
<rc:Receipt xmlns:rc="urn:sluice:xs:receipt:1" xmlns:cm="urn:sluice:xs:common:1">
  <rc:MessageId>5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d</rc:MessageId>
  <rc:SenderMessageId>CC-SCJG-REG-20261120-000130</rc:SenderMessageId>
  <rc:DocType>case.register</rc:DocType>
  <rc:Status>rejected</rc:Status>
  <rc:ReasonCode>SEMANTIC.IDCARD_CHECK</rc:ReasonCode>
  <rc:ReasonText>CaseRegister/Applicant/IdNumber: check digit does not match (4406**********1234).</rc:ReasonText>
  <rc:Time>2026-11-20T09:40:02+08:00</rc:Time>
  <rc:Signer>CN=sluice-440600-outer,OU=数据交换,O=佛山市政务服务数据管理局,C=CN</rc:Signer>
</rc:Receipt>
'''
valid("receipt", "valid-3.xml", rc_bare3, "A bare rejection receipt with reason code and a masked reason text.")
invalid("receipt", "digest-algorithm", rc_bare, [('Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"', 'Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"')], "xsd", "Digest", "Digest Algorithm is SHA-1, not the fixed SHA-256 URI.")
invalid("receipt", "status-enum", rc_bare, [("<rc:Status>accepted</rc:Status>", "<rc:Status>ok</rc:Status>")], "xsd", "Status", "Status ok is not one of accepted, delivered, rejected, expired.")
invalid("receipt", "missing-time", rc_bare, [("  <rc:Time>2026-11-20T09:30:01+08:00</rc:Time>\n", "")], "xsd", "Time", "The required Time element is missing.")
invalid("receipt", "doctype-body-mismatch", rc2, [("<env:DocType>receipt</env:DocType>", "<env:DocType>feedback.result</env:DocType>")], "semantic", "DocType", "DocType says feedback.result but the Body holds a Receipt.")

# ---------------------------------------------------------------- write
if os.path.isdir(ROOT):
    shutil.rmtree(ROOT)
for doctype, files in docs.items():
    os.makedirs(os.path.join(ROOT, doctype))
    for name, text in files:
        with open(os.path.join(ROOT, doctype, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
with open(os.path.join(ROOT, "expectations.tsv"), "w", encoding="utf-8", newline="\n") as f:
    f.write("#path\texpect\tfield\treason\n")
    for row in sorted(expect):
        f.write("\t".join(row) + "\n")
print(len(expect), "examples")
