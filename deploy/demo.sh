#!/usr/bin/env bash
# The Sluice demo on a fresh Debian 12 machine: installs what it needs, builds, creates a
# development PKI, starts a local receiving system (sink) and sluiced on its embedded
# defaults, then posts documents the way a department's integrator does (curl with a client
# certificate) and shows them delivered, queried, audited and refused when bad.
#
#   ./deploy/demo.sh            run the demo and stop everything at the end
#   ./deploy/demo.sh --keep     leave sluiced and the sink running afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
keep=no
[ "${1:-}" = "--keep" ] && keep=yes

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Install Debian packages (deploy/install-deps.sh)"
./deploy/install-deps.sh

step "2. Build (cmake --preset default; Ninja, ccache)"
cmake --preset default > /dev/null
cmake --build --preset default

step "3. Development PKI in var/pki (root CA -> issuing CA -> gateways, senders, admin)"
certs/make-dev-pki.sh var/pki

step "4. Start a local receiving system on 127.0.0.1:9000 and sluiced on its embedded defaults"
for port in 8443 8444 9000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use (an earlier demo still running? try: pkill -f 'build/gateway/sluiced|sluice-sink')" >&2
    exit 1
  fi
done
rm -rf var/outer var/sink var/log var/demo
mkdir -p var/log var/demo
build/tools/sluice-sink --port 9000 --dir var/sink > var/log/sink.log 2>&1 &
sink_pid=$!
build/gateway/sluiced --ready-file var/demo/ready.json > var/log/sluiced.log 2>&1 &
sluiced_pid=$!
cleanup() {
  if [ "$keep" = no ]; then
    kill -TERM "$sluiced_pid" "$sink_pid" 2>/dev/null || true
    wait "$sluiced_pid" 2>/dev/null || true
    wait "$sink_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
for _ in $(seq 200); do [ -f var/demo/ready.json ] && break; sleep 0.05; done
[ -f var/demo/ready.json ] || { echo "sluiced did not start:"; cat var/log/sluiced.log; exit 1; }
echo "sluiced is up: $(cat var/demo/ready.json)"

# A department integrator's curl: the sender's certificate identifies it (OU=node, CN=system).
post() {  # post <cert-name> <file>: prints "HTTP <code> <json answer>"
  local code
  code=$(curl -sS --cacert var/pki/ca-bundle.pem --cert "var/pki/$1.chain.pem" --key "var/pki/$1.key.pem" \
       -H 'Content-Type: application/xml' --data-binary @"$2" -o var/demo/answer.json \
       -w '%{http_code}' https://localhost:8443/v1/messages)
  echo "HTTP $code $(cat var/demo/answer.json)"
}

step "5. A district approval system posts case events (curl + client certificate)"
run=$(date +%s)
ids=()
for doc in case.register case.accept case.undertake case.review case.approve case.fee case.conclude case.rating; do
  # A fresh SenderMessageId per demo run (the same one again would be answered as a resend).
  sed "s#<env:SenderMessageId>\([^<]*\)</env:SenderMessageId>#<env:SenderMessageId>\1-$run</env:SenderMessageId>#" \
      "schemas/examples/$doc/valid-1.xml" > "var/demo/$doc.xml"
  echo "POST $doc"
  out=$(post sender-440604-approval "var/demo/$doc.xml")
  echo "  $out" | cut -c1-240
  ids+=("$(echo "$out" | sed -n 's/.*"messageId":"\([^"]*\)".*/\1/p')")
done

step "6. The same document again: answered with the original MessageId, stored once"
post sender-440604-approval var/demo/case.accept.xml | cut -c1-200

step "7. Delivered to the receiving system (sink), each exactly once"
for _ in $(seq 100); do
  [ "$(ls var/sink 2>/dev/null | wc -l)" -ge "${#ids[@]}" ] && break; sleep 0.1
done
ls -1 var/sink | head -8
echo "sink received $(ls var/sink | wc -l) documents for ${#ids[@]} posted"
echo "case.conclude also went to the spool destination 'archive': $(ls var/outer/archive | wc -l) file(s)"

step "8. The integrator asks for the state of a message"
curl -sS --cacert var/pki/ca-bundle.pem --cert var/pki/sender-440604-approval.chain.pem \
     --key var/pki/sender-440604-approval.key.pem "https://localhost:8443/v1/messages/${ids[1]}"
echo

step "9. Proof: the signed receipt of the accept, and the delivered document, verified offline"
curl -sS --cacert var/pki/ca-bundle.pem --cert var/pki/sender-440604-approval.chain.pem \
     --key var/pki/sender-440604-approval.key.pem "https://localhost:8443/v1/messages/${ids[1]}/receipt" \
     > var/demo/receipt.xml
head -c 400 var/demo/receipt.xml; echo " ..."
build/tools/sluicectl verify var/demo/receipt.xml "var/sink/${ids[1]}.xml"
echo "the same delivered document, verified by the xmlsec1 command-line tool:"
xmlsec1 --verify --enabled-key-data x509 --trusted-pem var/pki/root.cert.pem \
        --untrusted-pem var/pki/intermediate.cert.pem "var/sink/${ids[1]}.xml" > var/demo/xmlsec.log 2>&1
head -1 var/demo/xmlsec.log
curl -sS --cacert var/pki/ca-bundle.pem --cert var/pki/sender-440604-approval.chain.pem \
     --key var/pki/sender-440604-approval.key.pem \
     "https://localhost:8443/v1/messages/${ids[1]}/receipt?status=delivered" > var/demo/delivered.xml
echo "delivery receipt: $(grep -o '<rc:Status>[a-z]*</rc:Status>' var/demo/delivered.xml)"

step "10. Department feeds in their own formats"
echo "市场监督管理局 JSON API -> case.accept:"
curl -sS --cacert var/pki/ca-bundle.pem --cert var/pki/sender-440600-market.chain.pem \
     --key var/pki/sender-440600-market.key.pem -H 'Content-Type: application/json' \
     --data-binary @adapters/samples/market-regulation.json -w '  -> HTTP %{http_code}\n' \
     https://localhost:8443/v1/submit/market-json | cut -c1-300
echo
echo "税务局 CSV export in GBK, uploaded as a file (rows 3 and 5 are bad):"
curl -sS --cacert var/pki/ca-bundle.pem --cert var/pki/sender-440605-tax.chain.pem \
     --key var/pki/sender-440605-tax.key.pem -F "file=@adapters/samples/tax-register-gbk.csv;type=text/csv" \
     -o var/demo/tax.json -w 'HTTP %{http_code}\n' https://localhost:8443/v1/submit/tax-csv
python3 -c 'import json;d=json.load(open("var/demo/tax.json"));print("accepted",d["accepted"],"of",d["records"]);[print("  line",e["line"],e["code"]+":",e["message"][:150]) for e in d["errors"]]'
echo "公安局 own XML, dropped into a spool directory (written, then renamed into incoming/):"
cp adapters/samples/public-security.xml var/outer/spool-in/psb/.GA-20261123-01.xml.part
mv var/outer/spool-in/psb/.GA-20261123-01.xml.part var/outer/spool-in/psb/incoming/GA-20261123-01.xml
for _ in $(seq 50); do [ -f var/outer/spool-in/psb/done/GA-20261123-01.xml ] && break; sleep 0.1; done
ls var/outer/spool-in/psb/done/

step "11. The quarantine: what failed waits for an operator"
build/tools/sluicectl quarantine list > var/demo/quarantine.json
python3 -c 'import json;d=json.load(open("var/demo/quarantine.json"));print(d["total"],"entries");[print(" ",e["id"],e["source"],"line",e.get("line"),e["code"]) for e in d["entries"]]' 
qid=$(python3 -c 'import json,sys;print([e["id"] for e in json.load(open("var/demo/quarantine.json"))["entries"] if e["code"]=="record.untranslatable"][0])')
echo "correcting the row without a case number and resubmitting $qid:"
build/tools/sluicectl quarantine show "$qid" | python3 -c 'import json,sys;e=json.load(sys.stdin);h,r=e["raw"].split("\n",1);print(h+"\n44060520261123009999"+r)' > var/demo/row.csv
build/tools/sluicectl quarantine resubmit "$qid" --file var/demo/row.csv

step "12. Bad input is refused with a reason, and nothing is stored"
printf 'not xml' > var/demo/bad.xml
post sender-440604-approval var/demo/bad.xml
echo "another sender's certificate claiming 440604/approval:"
post sender-440605-tax var/demo/case.accept.xml

step "13. The network admin: queues and the audit trail (sluicectl, admin certificate)"
build/tools/sluicectl stats
build/tools/sluicectl --identity admin-auditor audit verify   # the audit admin: the only role that reads the trail

step "14. The gate: an outer and an inner half, two processes with their own stores"
for port in 8543 8544 8643 8644 7400 9001 9002; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use (an earlier demo still running?)" >&2
    exit 1
  fi
done
rm -rf var/gate && mkdir -p var/gate/ferry
build/tools/sluicectl ferry keygen --dir var/gate/ferry outer | tail -1
build/tools/sluicectl ferry keygen --dir var/gate/ferry inner | tail -1
pki="$PWD/var/pki"
half() {  # half <role> <cert> <data port> <admin port> <ferry lines> <destinations and routes>
  cat <<TOML
[gateway]
role = "$1"
id = "demo-$1"
state_dir = "$PWD/var/gate"
schema_dir = "$PWD/schemas"
[listen.data]
port = $3
cert = "$pki/$2.chain.pem"
key = "$pki/$2.key.pem"
client_ca = "$pki/ca-bundle.pem"
crls = ["$pki/crl-chain.pem"]
[listen.admin]
port = $4
cert = "$pki/$2.chain.pem"
key = "$pki/$2.key.pem"
client_ca = "$pki/ca-bundle.pem"
crls = ["$pki/crl-chain.pem"]
[store]
path = "$PWD/var/gate/$1/store"
map_size_mb = 256
[signing]
cert = "$pki/$2.chain.pem"
key = "$pki/$2.key.pem"
trust = "$pki/ca-bundle.pem"
crls = ["$pki/crl-chain.pem"]
[ferry]
$5
[[gate.inbound]]
doc_types = ["case.register", "case.accept", "case.undertake", "case.review", "case.approve",
             "case.supplement-*", "case.special-procedure", "case.reject", "case.fee", "case.rating"]
[[gate.outbound]]
doc_types = ["case.conclude", "public.*"]
personal_data_fields = []
$6
[[sender]]
id = "440604/approval"
doc_types = ["case.*", "public.*"]
receivers = ["440600/*"]
[[sender]]
id = "440600/supervision"
doc_types = ["case.*", "public.*"]
receivers = ["440604/*"]
TOML
}
half outer gateway-outer 8543 8544 \
  "listen = \"tcp://127.0.0.1:7400\"
secret_key = \"ferry/outer.key\"
allowed_keys = [\"ferry/inner.pub\"]
peer = \"gateway/sluice-inner\"" \
  "[[destination]]
name = \"inner\"
kind = \"ferry\"
[[destination]]
name = \"portal\"
url = \"http://127.0.0.1:9002/inbox\"
[[route]]
receiver = \"440600/*\"
destinations = [\"inner\"]
[[route]]
receiver = \"440604/*\"
destinations = [\"portal\"]" > var/gate/outer.toml
half inner gateway-inner 8643 8644 \
  "connect = \"tcp://127.0.0.1:7400\"
secret_key = \"ferry/inner.key\"
server_key = \"ferry/outer.pub\"
peer = \"gateway/sluice-outer\"" \
  "[[destination]]
name = \"supervision\"
url = \"http://127.0.0.1:9001/inbox\"
[[destination]]
name = \"outer\"
kind = \"ferry\"
[[route]]
receiver = \"440600/*\"
destinations = [\"supervision\"]
[[route]]
receiver = \"440604/*\"
destinations = [\"outer\"]" > var/gate/inner.toml
build/gateway/sluiced --config var/gate/outer.toml --check-config
build/gateway/sluiced --config var/gate/inner.toml --check-config
build/tools/sluice-sink --port 9001 --dir var/gate/supervision > var/log/sink-supervision.log 2>&1 &
gate_pids=($!)
build/tools/sluice-sink --port 9002 --dir var/gate/portal > var/log/sink-portal.log 2>&1 &
gate_pids+=($!)
build/gateway/sluiced --config var/gate/outer.toml --ready-file var/gate/outer.ready > var/log/outer.log 2>&1 &
gate_pids+=($!)
for _ in $(seq 200); do [ -f var/gate/outer.ready ] && break; sleep 0.05; done
build/gateway/sluiced --config var/gate/inner.toml --ready-file var/gate/inner.ready > var/log/inner.log 2>&1 &
gate_pids+=($!)
for _ in $(seq 200); do [ -f var/gate/inner.ready ] && break; sleep 0.05; done
gate_cleanup() {
  if [ "$keep" = no ]; then
    kill -TERM "${gate_pids[@]}" 2>/dev/null || true
    wait "${gate_pids[@]}" 2>/dev/null || true
  fi
  cleanup
}
trap gate_cleanup EXIT
for _ in $(seq 100); do
  build/tools/sluicectl --port 8544 ferry status 2>/dev/null | grep -q '"up":true' && break; sleep 0.1
done
echo "the inner half opened the ferry: $(build/tools/sluicectl --port 8544 ferry status | grep -o '"state": "[^"]*"')"
gpost() {  # gpost <port> <cert-name> <file>
  curl -sS --cacert var/pki/ca-bundle.pem --cert "var/pki/$2.chain.pem" --key "var/pki/$2.key.pem" \
       -H 'Content-Type: application/xml' --data-binary @"$3" -w ' -> HTTP %{http_code}\n' \
       "https://localhost:$1/v1/messages"
}
echo "a district posts a case.accept to the outer half; it crosses in to the supervision centre:"
gpost 8543 sender-440604-approval var/demo/case.accept.xml | cut -c1-160
sed -e "s#<env:SenderMessageId>\([^<]*\)</env:SenderMessageId>#<env:SenderMessageId>\1-reply-$run</env:SenderMessageId>#" \
    -e '0,/<cm:Node>440604<\/cm:Node>/s##<cm:Node>440600</cm:Node>#' \
    -e '0,/<cm:System>approval<\/cm:System>/s##<cm:System>supervision</cm:System>#' \
    -e '/<env:Receiver>/,/<\/env:Receiver>/{s#<cm:Node>440600</cm:Node>#<cm:Node>440604</cm:Node>#;s#<cm:System>supervision</cm:System>#<cm:System>approval</cm:System>#}' \
    schemas/examples/case.conclude/valid-1.xml > var/demo/reply.xml
echo "the supervision centre posts a case.conclude to the inner half; it crosses out to the portal:"
gpost 8643 sender-440600-supervision var/demo/reply.xml | cut -c1-160
sed -e "s#<env:SenderMessageId>\([^<]*\)</env:SenderMessageId>#<env:SenderMessageId>\1-out-$run</env:SenderMessageId>#" \
    -e '0,/<cm:System>portal<\/cm:System>/s##<cm:System>supervision</cm:System>#' \
    -e '/<env:Receiver>/,/<\/env:Receiver>/{s#<cm:Node>440600</cm:Node>#<cm:Node>440604</cm:Node>#;s#<cm:System>supervision</cm:System>#<cm:System>approval</cm:System>#}' \
    schemas/examples/public.complaint/valid-1.xml > var/demo/complaint-out.xml
echo "a complaint carrying the complainant's mobile number may not leave the internal network:"
gpost 8643 sender-440600-supervision var/demo/complaint-out.xml | cut -c1-300
for _ in $(seq 100); do
  [ "$(ls var/gate/supervision 2>/dev/null | wc -l)" -ge 1 ] && [ "$(ls var/gate/portal 2>/dev/null | wc -l)" -ge 1 ] && break
  sleep 0.1
done
echo "crossed in, at the supervision centre: $(ls var/gate/supervision)"
echo "crossed out, at the portal:            $(ls var/gate/portal)"
echo "the document that crossed in carries the inner half's signature:"
build/tools/sluicectl verify --gateway sluice-inner var/gate/supervision/*.xml
echo "ferry status, each half (sluicectl ferry status):"
build/tools/sluicectl --port 8544 ferry status | python3 -c 'import json,sys;d=json.load(sys.stdin);print(" outer:",{k:d[k] for k in ("up","state","peerGateway","sent","stored","received","refused","backlog","lastError")})'
build/tools/sluicectl --port 8644 ferry status | python3 -c 'import json,sys;d=json.load(sys.stdin);print(" inner:",{k:d[k] for k in ("up","state","peerGateway","sent","stored","received","refused","backlog","lastError")})'

echo
if [ "$keep" = yes ]; then
  echo "Demo done; sluiced (pid $sluiced_pid), the sink (pid $sink_pid) and the two halves (pids ${gate_pids[*]}) keep running."
else
  echo "Demo done; stopping sluiced and the sink. Logs: var/log/"
fi
