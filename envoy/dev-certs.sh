#!/usr/bin/env bash
# Development certificates for the local stack and the tests (never committed):
#   ca.crt/ca.key          a throwaway CA
#   server.crt/server.key  for localhost, 127.0.0.1 and ::1 (Envoy's TLS listener, our gRPC TLS)
#   client.crt/client.key  a client certificate with a SPIFFE URI SAN (mTLS callers)
# Usage: envoy/dev-certs.sh OUTDIR   (does nothing when OUTDIR/server.crt exists)
set -euo pipefail
out=${1:?usage: dev-certs.sh OUTDIR}
[ -f "$out/server.crt" ] && exit 0
mkdir -p "$out"
chmod 700 "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }

ec_key "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 30 -subj "/CN=envoy-authz dev CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$tmp/ca.crt" 2>/dev/null

leaf() { # name subject san extendedKeyUsage
  ec_key "$tmp/$1.key"
  openssl req -new -key "$tmp/$1.key" -subj "$2" -out "$tmp/$1.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' "$4" "$3" > "$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial -days 30 -sha256 \
    -extfile "$tmp/$1.ext" -out "$tmp/$1.crt" 2>/dev/null
}
leaf server "/CN=localhost" "DNS:localhost,IP:127.0.0.1,IP:::1" serverAuth
leaf client "/CN=demo-client" "URI:spiffe://dev.local/ns/demo/sa/client" clientAuth

cp "$tmp"/ca.crt "$tmp"/ca.key "$tmp"/server.crt "$tmp"/server.key "$tmp"/client.crt "$tmp"/client.key "$out"/
echo "dev certificates written to $out" >&2
