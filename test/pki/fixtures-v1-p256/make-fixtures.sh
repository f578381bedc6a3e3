#!/usr/bin/env bash
# Regenerates these v1 P256 fixtures: make-fixtures.sh /path/to/1.9.3/nebula-cert /path/to/1.11.0/nebula-cert
# (get both with ../shared/tools/fetch-nebula.sh DIR). *.json is `TZ=UTC nebula-cert print -json` of 1.11.0 for every
# certificate (1.9.3's own print has another layout); the tests read every expectation from those files.
set -euo pipefail
nc193=${1:?usage: make-fixtures.sh NEBULA_CERT_1.9.3 NEBULA_CERT_1.11.0}
nc111=${2:?usage: make-fixtures.sh NEBULA_CERT_1.9.3 NEBULA_CERT_1.11.0}
cd "$(dirname "$0")"
rm -f ./*.crt ./*.key ./*.pub ./*.json
"$nc193" -version | grep -q 'Version: 1.9.3'
"$nc111" -version | grep -q 'Version: 1.11.0'
long=876000h # 100 years: the fixtures outlive the project
# nebula-cert 1.9.3 knows only v1 certificates; -curve P256 sets field 100.
"$nc193" ca -curve P256 -name 'v1 p256 ca 1.9.3' -duration $long -ips 10.0.0.0/8 -subnets 192.168.0.0/16 -groups a,b \
  -out-crt ca-193.crt -out-key ca-193.key
"$nc193" sign -ca-crt ca-193.crt -ca-key ca-193.key -name host-193 -ip 10.1.0.1/16 -subnets 192.168.5.0/24 -groups a \
  -out-crt host-193.crt -out-key host-193.key
# nebula-cert 1.11.0 makes v1 certificates with -version 1.
"$nc111" ca -version 1 -curve P256 -name 'v1 p256 ca 1.11.0' -duration $long -out-crt ca-111.crt -out-key ca-111.key
"$nc111" keygen -curve P256 -out-key host-111.key -out-pub host-111.pub
"$nc111" sign -ca-crt ca-111.crt -ca-key ca-111.key -name host-111 -networks 10.2.0.1/16 -groups x,y -in-pub host-111.pub \
  -out-crt host-111.crt
for c in *.crt; do TZ=UTC "$nc111" print -json -path "$c" > "${c%.crt}.json"; done
